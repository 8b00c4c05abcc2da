"""The parts of one running stand-in, and what a request handler needs from them."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, request

from sandbox.common.faults import CallLog, FaultBoard
from sandbox.stripe.chores import Chore
from sandbox.stripe.events import Events, originating_request
from sandbox.stripe.faults import stripe_fault_board
from sandbox.stripe.idempotency import IdempotencyRecords
from sandbox.stripe.settings import StripeStandinSettings
from sandbox.stripe.state import StripeState
from sandbox.stripe.webhooks import WebhookSender

EXTENSION = "stripe_standin"


@dataclass
class StripeStandin:
    settings: StripeStandinSettings
    state: StripeState
    webhooks: WebhookSender
    events: Events
    idempotency: IdempotencyRecords
    faults: FaultBoard
    calls: CallLog
    chores: list[Chore] = field(default_factory=list)

    @classmethod
    def build(cls, settings: StripeStandinSettings) -> "StripeStandin":
        state = StripeState(settings)
        events = Events(state, settings)
        return cls(
            settings,
            state,
            events.webhooks,
            events,
            IdempotencyRecords(),
            stripe_fault_board(),
            CallLog(),
        )

    def reset(self) -> None:
        """Forget everything; the webhook endpoint goes back to the configured one."""
        self.webhooks.reset()
        self.webhooks.configure(self.settings.webhook_url, self.settings.webhook_secret)
        self.state.reset()
        self.idempotency.clear()
        self.faults.clear()
        self.calls.clear()

    def every(self, seconds: float, job: Callable[["StripeStandin"], object]) -> None:
        """Run ``job(self)`` on the stand-in's own clock until it is closed."""
        name = f"stripe-{getattr(job, '__name__', 'chore')}"
        self.chores.append(Chore(name, seconds, lambda: job(self)))

    def close(self) -> None:
        for chore in self.chores:
            chore.stop()
        self.webhooks.stop()


def standin() -> StripeStandin:
    return current_app.extensions[EXTENSION]


def public_url() -> str:
    """The base URL links use: the configured one, or the one the request came in on."""
    return standin().settings.public_url or request.host_url.rstrip("/")


def emit_event(
    event_type: str,
    data_object: dict[str, Any],
    account: str | None,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Raise an event from a request handler; ``request`` names the API call, if any."""
    return standin().events.emit(
        event_type, data_object, account, previous, request=originating_request()
    )
