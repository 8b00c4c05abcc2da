"""Which code handles which Stripe event type.

Feature packages register their handlers with ``@handles("type")``; a handler gets the stored
event and must be idempotent and safe in any order, because Stripe promises neither
exactly-once nor ordered delivery. A type without a handler is stored and ignored.
"""

from collections.abc import Callable

from vcpay.webhooks.models import StripeEvent

Handler = Callable[[StripeEvent], None]
HANDLERS: dict[str, Handler] = {}


class IgnoreEvent(Exception):
    """The event is kept and marked ignored, with the reason: it is not about anything of
    vcpay's, or it is about something of another account than the one it came from."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for event_type in event_types:
            if event_type in HANDLERS:
                raise ValueError(f"{event_type} already has a handler")
            HANDLERS[event_type] = handler
        return handler

    return register


def handler_for(event_type: str) -> Handler | None:
    return HANDLERS.get(event_type)
