"""The parts of one running stand-in, and what a request handler needs from them."""

from dataclasses import dataclass
from typing import Any

from flask import current_app, g, request

from sandbox.common.faults import CallLog, FaultBoard
from sandbox.jira.clock import Clock
from sandbox.jira.errors import Invalid
from sandbox.jira.faults import jira_fault_board
from sandbox.jira.records import CustomerRequest
from sandbox.jira.representations import ALL_FIELDS, issue_bean
from sandbox.jira.settings import StandinSettings
from sandbox.jira.site import Site
from sandbox.jira.state import JiraState
from sandbox.jira.webhooks import JiraWebhookSender

EXTENSION = "jira_standin"
EVENT_TYPE_NAMES = {"jira:issue_created": "issue_created", "comment_created": "issue_commented"}


@dataclass
class Standin:
    settings: StandinSettings
    clock: Clock
    state: JiraState
    faults: FaultBoard
    calls: CallLog
    webhooks: JiraWebhookSender

    @classmethod
    def build(cls, settings: StandinSettings) -> "Standin":
        clock = Clock()
        webhooks = JiraWebhookSender(
            settings.webhook_url,
            settings.webhook_secret,
            settings.webhook_retry_seconds,
            settings.webhook_timeout_seconds,
        )
        state = JiraState(settings, clock)
        running = cls(settings, clock, state, jira_fault_board(), CallLog(), webhooks)
        running.state.on_change = running.send_webhook
        return running

    def reset(self) -> None:
        self.state.reset()
        self.faults.clear()
        self.calls.clear()
        self.webhooks.reset()
        self.clock.shift_to(0)

    def send_webhook(self, event: str, changed: CustomerRequest) -> None:
        """The body Jira Cloud posts for an issue event: what happened, by whom, the issue."""
        here = Site(
            base=self.settings.public_url or "http://127.0.0.1",
            time_zone=self.settings.time_zone,
            accounts=self.state.account,
        )
        payload = {
            "timestamp": self.clock.now_ms(),
            "webhookEvent": event,
            "issue_event_type_name": EVENT_TYPE_NAMES.get(event, "issue_generic"),
            "issue": issue_bean(here, changed, ALL_FIELDS),
        }
        self.webhooks.submit(event, changed.key, payload)


def standin() -> Standin:
    return current_app.extensions[EXTENSION]


def site(api: str = "2") -> Site:
    """Links on the public URL (or the one the request came in on), times in the site's zone."""
    running = standin()
    base = running.settings.public_url or request.host_url.rstrip("/")
    return Site(
        base=base,
        time_zone=running.settings.time_zone,
        accounts=running.state.account,
        api="3" if api == "3" else "2",
        caller=g.get("account"),
    )


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("The request body must be a JSON object.")
    return body


def int_arg(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"The '{name}' parameter must be a whole number.") from None
    if value < minimum:
        raise Invalid(f"The '{name}' parameter must be at least {minimum}.")
    return min(value, maximum) if maximum is not None else value


def list_arg(name: str) -> list[str]:
    """A parameter given repeatedly, comma-separated, or both."""
    return [
        part.strip()
        for raw in request.args.getlist(name)
        for part in raw.split(",")
        if part.strip()
    ]


def bool_arg(name: str, default: bool) -> bool:
    raw = request.args.get(name)
    return default if raw is None else raw.strip().lower() == "true"
