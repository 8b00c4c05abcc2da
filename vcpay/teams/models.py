"""Invitations: how a person is brought into an organisation or one of its clinics."""

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vcpay.database import CreatedAtMixin, utcnow
from vcpay.extensions import db
from vcpay.people.models import Clinic, Organisation, User


class InvitedRole(enum.StrEnum):
    ORGANISATION_ADMIN = "organisation_admin"
    CLINIC_ADMIN = "clinic_admin"
    CLINICIAN = "clinician"


class Invitation(CreatedAtMixin, db.Model):
    """An emailed link that makes its holder an organisation admin (no clinic) or a clinic
    admin or clinician of one clinic. Only a hash of the link's random token is kept."""

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint(
            "role IN ('organisation_admin', 'clinic_admin', 'clinician')", name="role_known"
        ),
        CheckConstraint(
            "(role = 'organisation_admin' AND clinic_id IS NULL)"
            " OR (role <> 'organisation_admin' AND clinic_id IS NOT NULL)",
            name="place_fits_role",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased, as User.email is.
    email: Mapped[str] = mapped_column(String(254), index=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    clinic_id: Mapped[int | None] = mapped_column(
        ForeignKey("clinics.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(20))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    last_sent_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship()
    clinic: Mapped[Clinic | None] = relationship()
    invited_by: Mapped[User | None] = relationship()

    @property
    def is_pending(self) -> bool:
        return self.state == "pending"

    @property
    def state(self) -> str:
        """pending, accepted, revoked or expired."""
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= utcnow():
            return "expired"
        return "pending"

    def __repr__(self) -> str:
        return f"<Invitation {self.id} {self.role}>"
