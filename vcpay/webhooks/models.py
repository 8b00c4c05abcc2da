"""The inbox of Stripe events: every verified event is kept, once, before it is processed."""

import enum
from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vcpay.extensions import db


class EventState(enum.StrEnum):
    RECEIVED = "received"  # stored, waiting for a worker (or for its next attempt)
    PROCESSED = "processed"
    IGNORED = "ignored"  # no handler for its type, or the wrong mode: kept, not acted on
    FAILED = "failed"  # every attempt failed; an admin can retry it


class StripeEvent(db.Model):
    __tablename__ = "stripe_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stripe may deliver an event more than once: the unique id makes the second a no-op.
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100), index=True)
    account: Mapped[str | None] = mapped_column(String(64), index=True)
    livemode: Mapped[bool]
    created: Mapped[datetime]  # when Stripe created it
    # The body exactly as received: what the signature covered.
    payload: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20), default=EventState.RECEIVED.value, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # When a worker should next look at it; the sweeper re-enqueues what is overdue.
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    processed_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<StripeEvent {self.event_id} {self.type} {self.state}>"
