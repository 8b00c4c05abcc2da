"""Events: Stripe's envelope around an object's state at one moment, stored in the account's
scope and handed to the webhook sender.

``Events.emit`` is the one way to raise an event; request handlers use
``runtime.emit_event``, which adds the originating request.
"""

import copy
import json
import time
from typing import Any

from flask import g, has_request_context

from sandbox.stripe.settings import StripeStandinSettings
from sandbox.stripe.state import StripeState
from sandbox.stripe.store import new_id
from sandbox.stripe.webhooks import WebhookSender

API_VERSION = "2026-10-28.endive"  # the version stripe 16.1.0 pins
ACCOUNT_UPDATED = "account.updated"
APPLICATION_AUTHORIZED = "account.application.authorized"
APPLICATION_DEAUTHORIZED = "account.application.deauthorized"


def previous_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The earlier values of whatever changed, nested as in the object, as Stripe reports
    them in ``data.previous_attributes``. Lists count as one value."""
    changed: dict[str, Any] = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            changed[key] = previous_attributes(old, new)
        else:
            changed[key] = copy.deepcopy(old)
    return changed


def originating_request() -> dict[str, str | None]:
    """The API call that caused an event; dashboard and control actions have none."""
    origin = g.get("origin") if has_request_context() else None
    return dict(origin) if origin else {"id": None, "idempotency_key": None}


class Events:
    def __init__(self, state: StripeState, settings: StripeStandinSettings):
        self.state = state
        # The sender reports each attempt's outcome back here.
        self.webhooks = WebhookSender(settings, self.record_outcome)

    def emit(
        self,
        event_type: str,
        data_object: dict[str, Any],
        account: str | None,
        previous: dict[str, Any] | None = None,
        request: dict[str, str | None] | None = None,
    ) -> dict[str, Any]:
        with self.state.lock:  # stored and queued in one step, so deliveries keep its order
            delivered = self._is_delivered(event_type, account)
            event = self._envelope(event_type, data_object, account, previous, request)
            event["pending_webhooks"] = 1 if delivered else 0
            self.state.put_object(account, event)
            if delivered:
                self.webhooks.submit(event, webhook_payload(event))
        return event

    def redeliver(self, event: dict[str, Any]) -> None:
        self.webhooks.redeliver(event, webhook_payload(event))

    def record_outcome(
        self, account: str | None, event_id: str, delivered: bool, final: bool
    ) -> None:
        """The sender's report: ``delivery_success`` for the events list, and no more
        pending webhooks once delivered or given up."""
        self.state.record_delivery(event_id, delivered)
        if final:
            self.state.update_object(
                account, event_id, lambda event: event.update(pending_webhooks=0)
            )

    def _is_delivered(self, event_type: str, account: str | None) -> bool:
        """Every event goes to the endpoint once one is set. (Stripe's Connect endpoint
        hears only of connected accounts; sending the rest too lets tests check that the
        platform ignores accounts it does not know.)"""
        return self.webhooks.enabled

    @staticmethod
    def _envelope(
        event_type: str,
        data_object: dict[str, Any],
        account: str | None,
        previous: dict[str, Any] | None,
        request: dict[str, str | None] | None,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {"id": new_id("evt_"), "object": "event"}
        if account:
            event["account"] = account
        data: dict[str, Any] = {"object": copy.deepcopy(data_object)}
        if previous is not None:
            data["previous_attributes"] = previous
        event.update(
            api_version=API_VERSION,
            created=int(time.time()),
            data=data,
            livemode=False,
            pending_webhooks=0,
            request=request or {"id": None, "idempotency_key": None},
            type=event_type,
        )
        return event


def webhook_payload(event: dict[str, Any]) -> str:
    """The body as Stripe sends it: the event as JSON, indented."""
    return json.dumps(event, indent=2)
