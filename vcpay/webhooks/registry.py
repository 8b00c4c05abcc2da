"""Which code handles which Stripe event type.

Each feature package says which of its functions handle which types in its own
``register_stripe_handlers(app)``, called by the factory; the handlers live on the Flask
application, so what handles an event is decided at start-up, never by what happened to be
imported. A handler must be idempotent and safe in any order, because Stripe promises
neither exactly-once nor ordered delivery. A type without a handler is stored and ignored.

Features add handlers of Stripe's changes (``add_change``): the adapter reads the stored event
into a typed value (``CheckoutChanged``, ``AccountDeauthorized``...) and the handler gets that
value, never Stripe's body. An event about an account Stripe no longer lets vcpay act for
(its link was removed and the account disconnected: Stripe answers ``account_invalid``) is
not applicable: it is kept and ignored with the reason, never retried, since asking again
cannot succeed and what it was about was settled when the link went.
"""

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, current_app

from vcpay.integrations.stripe_errors import AccountNotConnected
from vcpay.integrations.stripe_events import read_change
from vcpay.webhooks.models import StripeEvent

log = logging.getLogger(__name__)
Handler = Callable[[StripeEvent], None]
EXTENSION = "stripe_handlers"


class IgnoreEvent(Exception):
    """The event is kept and marked ignored, with the reason: it is not about anything of
    vcpay's, it is about something of another account than the one it came from, or it came
    from an account vcpay can no longer act for."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class StripeHandlers:
    """One handler per event type."""

    def __init__(self) -> None:
        self._by_type: dict[str, Handler] = {}

    def add(self, handler: Handler, *event_types: str) -> None:
        for event_type in event_types:
            if event_type in self._by_type:
                raise ValueError(f"{event_type} already has a handler")
            self._by_type[event_type] = handler

    def add_change(self, handler: Callable[[Any], None], *event_types: str) -> None:
        """Add a handler of the typed value the adapter reads from each event."""

        @wraps(handler)
        def handle(event: StripeEvent) -> None:
            try:
                change = read_change(event.type, event.account, event.payload)
            except ValueError as error:
                raise IgnoreEvent(str(error)) from None
            try:
                handler(change)
            except AccountNotConnected as refused:
                log.warning(
                    "Stripe event %s (%s) is from %s, which vcpay can no longer act for; ignored",
                    event.event_id,
                    event.type,
                    event.account or "the platform",
                )
                raise IgnoreEvent(
                    f"Not applicable: Stripe no longer lets vcpay act for "
                    f"{event.account or 'the platform'} ({refused})"
                ) from None

        self.add(handle, *event_types)

    def for_type(self, event_type: str) -> Handler | None:
        return self._by_type.get(event_type)


def stripe_handlers(app: Flask) -> StripeHandlers:
    return app.extensions.setdefault(EXTENSION, StripeHandlers())


def handler_for(event_type: str) -> Handler | None:
    return stripe_handlers(current_app).for_type(event_type)
