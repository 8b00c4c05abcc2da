"""Calls, the people in them, and the events both sides see live."""

import enum
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vcpay.database import CreatedAtMixin
from vcpay.extensions import db
from vcpay.people.models import Clinic, User


def new_guest_token() -> str:
    return secrets.token_urlsafe(32)


class CallState(enum.StrEnum):
    OPEN = "open"
    ENDED = "ended"


class Call(CreatedAtMixin, db.Model):
    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"), index=True)
    clinician_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # What the clinician calls it in their list, e.g. the patient's name or appointment.
    title: Mapped[str] = mapped_column(String(120), default="")
    # The patient's key to this call alone: unguessable, and refused once the call has ended.
    guest_token: Mapped[str] = mapped_column(String(64), unique=True, default=new_guest_token)
    state: Mapped[str] = mapped_column(String(10), default=CallState.OPEN.value, index=True)
    ended_at: Mapped[datetime | None]

    clinic: Mapped[Clinic] = relationship()
    clinician: Mapped[User | None] = relationship()
    participants: Mapped[list["Participant"]] = relationship(
        back_populates="call", order_by="Participant.id"
    )

    @property
    def is_open(self) -> bool:
        return self.state == CallState.OPEN

    def __repr__(self) -> str:
        return f"<Call {self.id} clinic={self.clinic_id} {self.state}>"


class ParticipantRole(enum.StrEnum):
    CLINICIAN = "clinician"
    PATIENT = "patient"


class Participant(CreatedAtMixin, db.Model):
    __tablename__ = "call_participants"
    __table_args__ = (CheckConstraint("role IN ('clinician', 'patient')", name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10))
    display_name: Mapped[str] = mapped_column(String(80))
    # The language the patient reads vcpay in (Babel's name; "" for clinicians): Stripe's
    # payment page is asked for it.
    locale: Mapped[str] = mapped_column(String(16), default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The clinician recognised this participant as an earlier one (the same patient, rejoined
    # from another device): always the first participant of that person, never a chain.
    recognised_as_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_participants.id", ondelete="SET NULL")
    )

    call: Mapped[Call] = relationship(back_populates="participants")
    recognised_as: Mapped["Participant | None"] = relationship(remote_side=[id])

    @property
    def clinic(self) -> Clinic:
        """Its scope, for permissions and the audit log."""
        return self.call.clinic

    @property
    def person_id(self) -> int:
        """The same for every participant the clinician has recognised as one person."""
        return self.recognised_as_id or self.id


class Audience(enum.StrEnum):
    EVERYONE = "everyone"
    STAFF = "staff"  # the clinician's side only


class CallEvent(CreatedAtMixin, db.Model):
    """Something both screens must show, written in the transaction that made it happen.

    The id orders events and is the Server-Sent Events id a browser resumes from.
    """

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    audience: Mapped[str] = mapped_column(String(10), default=Audience.EVERYONE.value)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    call: Mapped[Call] = relationship()
