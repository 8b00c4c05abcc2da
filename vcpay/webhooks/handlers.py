"""Which code handles which Stripe event type.

Each feature package says which of its functions handle which types in its own
``register_stripe_handlers(app)``, called by the factory; the handlers live on the Flask
application, so what handles an event is decided at start-up, never by what happened to be
imported. A handler gets the stored event and must be idempotent and safe in any order,
because Stripe promises neither exactly-once nor ordered delivery. A type without a handler
is stored and ignored.
"""

from collections.abc import Callable

from flask import Flask, current_app

from vcpay.webhooks.models import StripeEvent

Handler = Callable[[StripeEvent], None]
EXTENSION = "stripe_handlers"


class IgnoreEvent(Exception):
    """The event is kept and marked ignored, with the reason: it is not about anything of
    vcpay's, or it is about something of another account than the one it came from."""

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

    def for_type(self, event_type: str) -> Handler | None:
        return self._by_type.get(event_type)


def stripe_handlers(app: Flask) -> StripeHandlers:
    return app.extensions.setdefault(EXTENSION, StripeHandlers())


def handler_for(event_type: str) -> Handler | None:
    return stripe_handlers(current_app).for_type(event_type)
