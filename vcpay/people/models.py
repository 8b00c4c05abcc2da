"""Organisations, their clinics, the people who work in them and the roles they hold."""

import enum
from datetime import datetime

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vcpay.database import CreatedAtMixin
from vcpay.extensions import db


class ClinicRole(enum.StrEnum):
    CLINIC_ADMIN = "clinic_admin"
    CLINICIAN = "clinician"


class Organisation(CreatedAtMixin, db.Model):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)

    clinics: Mapped[list["Clinic"]] = relationship(
        back_populates="organisation", order_by="Clinic.name"
    )
    memberships: Mapped[list["OrganisationMembership"]] = relationship(
        back_populates="organisation"
    )

    @property
    def telehealth_manager(self) -> "User | None":
        for membership in self.memberships:
            if membership.is_telehealth_manager:
                return membership.user
        return None

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.name!r}>"


def _default_time_zone() -> str:
    return current_app.config["BABEL_DEFAULT_TIMEZONE"]


class Clinic(CreatedAtMixin, db.Model):
    __tablename__ = "clinics"
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Set by an approved enablement request, which is recorded with it.
    gateway_enabled_at: Mapped[datetime | None]
    gateway_enabled_by_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("enablement_requests.id", ondelete="SET NULL")
    )
    # Where the clinic's days begin and end (an IANA name): its payments are counted by day,
    # and its exports are written, in this time zone.
    time_zone: Mapped[str] = mapped_column(
        String(64), default=_default_time_zone, server_default="Australia/Sydney"
    )
    # Patients may save a card when they join, to be charged after the call (off by default).
    saved_cards_allowed: Mapped[bool] = mapped_column(default=False, server_default=false())

    organisation: Mapped[Organisation] = relationship(back_populates="clinics")
    memberships: Mapped[list["ClinicMembership"]] = relationship(back_populates="clinic")

    @property
    def gateway_enabled(self) -> bool:
        return self.gateway_enabled_at is not None

    def __repr__(self) -> str:
        return f"<Clinic {self.id} {self.name!r}>"


class User(UserMixin, CreatedAtMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased so sign-in and uniqueness ignore case on every backend.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_disabled: Mapped[bool] = mapped_column(default=False)
    locale: Mapped[str | None] = mapped_column(String(16))
    last_signed_in_at: Mapped[datetime | None]
    # Opted in to emails about payment problems in the clinics they administer (a payment
    # that failed or expired unpaid, a refund or a payout that failed).
    payment_notices: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Two-factor sign-in (vcpay/auth/two_factor.py): the TOTP secret (base32; never shown
    # again after enrolment), when it was turned on, and the last time-step a code was
    # accepted for, so no code is accepted twice.
    two_factor_secret: Mapped[str | None] = mapped_column(String(64))
    two_factor_enabled_at: Mapped[datetime | None]
    two_factor_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # Set only by the demo seed: the demo's people sign in with the shared password alone.
    # Honoured only on the local demo (vcpay.config.is_local_demo), never in production.
    two_factor_exempt: Mapped[bool] = mapped_column(default=False, server_default=false())

    organisation_memberships: Mapped[list["OrganisationMembership"]] = relationship(
        back_populates="user"
    )
    clinic_memberships: Mapped[list["ClinicMembership"]] = relationship(back_populates="user")

    @property
    def is_active(self) -> bool:
        return not self.is_disabled

    @property
    def two_factor_enabled(self) -> bool:
        return self.two_factor_enabled_at is not None and self.two_factor_secret is not None

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class OrganisationMembership(CreatedAtMixin, db.Model):
    """An organisation admin; at most one per organisation is its telehealth manager."""

    __tablename__ = "organisation_memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "organisation_id"),
        Index(
            "uq_organisation_memberships_one_telehealth_manager",
            "organisation_id",
            unique=True,
            sqlite_where=text("is_telehealth_manager"),
            postgresql_where=text("is_telehealth_manager"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    is_telehealth_manager: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship(back_populates="organisation_memberships")
    organisation: Mapped[Organisation] = relationship(back_populates="memberships")


class ClinicMembership(CreatedAtMixin, db.Model):
    """A role in one clinic; a person who both administers and consults holds two rows."""

    __tablename__ = "clinic_memberships"
    __table_args__ = (
        UniqueConstraint("user_id", "clinic_id", "role"),
        CheckConstraint("role IN ('clinic_admin', 'clinician')", name="role_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))

    user: Mapped[User] = relationship(back_populates="clinic_memberships")
    clinic: Mapped[Clinic] = relationship(back_populates="memberships")


class SignInSession(CreatedAtMixin, db.Model):
    """One sign-in from one browser. The browser holds a random id; only its hash is kept here,
    so a copy of this table signs nobody in, and revoking the row ends the sign-in at once."""

    __tablename__ = "sign_in_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # What the person is shown on their sessions page: the browser's User-Agent as it sent
    # it (cut short) and the address it signed in from.
    user_agent: Mapped[str | None] = mapped_column(String(400))
    address: Mapped[str | None] = mapped_column(String(45))

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<SignInSession {self.id} of user {self.user_id}>"


class RecoveryCode(CreatedAtMixin, db.Model):
    """One of a person's single-use recovery codes for two-factor sign-in: only a keyed hash
    of it is kept; ``used_at`` is set (once, by a guarded update) when it is spent."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<RecoveryCode {self.id} of user {self.user_id}>"
