"""Email that vcpay sends, kept until the mail server has taken it."""

import enum
from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vcpay.database import CreatedAtMixin
from vcpay.extensions import db


class EmailState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"


class OutboundEmail(CreatedAtMixin, db.Model):
    """One message to one recipient.

    Written in the same transaction as the change it reports, so a change is never committed
    without its email, and ``dedupe_key`` makes a replayed change queue nothing new.
    """

    __tablename__ = "outbound_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    # The language it was written in, for the HTML part's ``lang``; None before it was kept.
    locale: Mapped[str | None] = mapped_column(String(16))
    # Shown as the sender's name (a patient's receipt comes from the clinic); "" means the
    # name in the configured From address.
    sender_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # Chosen once when queued, so every attempt sends the same one and a receiving server or
    # mail client can drop a duplicate of a retry.
    message_id: Mapped[str | None] = mapped_column(String(250))
    state: Mapped[str] = mapped_column(String(20), default=EmailState.PENDING.value, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    # Set by the worker sending it now (see vcpay.claims): two workers never both send it.
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<OutboundEmail {self.id} {self.dedupe_key} {self.state}>"
