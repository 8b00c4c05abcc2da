"""A clinic's link to its own Stripe account, and the attempts to make one.

A link is never deleted: removing it keeps the row (who, when, why), so the history of which
account took a clinic's payments survives. A clinic may have several live links, to different
accounts, each named by its admin; exactly one of them is the clinic's default, and a clinician
may be routed to another (``AccountRoute``).
"""

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vcpay.database import CreatedAtMixin
from vcpay.extensions import db
from vcpay.people.models import Clinic, User


class LinkState(enum.StrEnum):
    LINKED = "linked"
    REMOVED = "removed"


class RemovalCause(enum.StrEnum):
    BY_ADMIN = "by_admin"
    IN_STRIPE = "in_stripe"  # disconnected from the clinic's own Stripe dashboard


class StripeLink(CreatedAtMixin, db.Model):
    __tablename__ = "stripe_links"
    __table_args__ = (
        Index(
            "uq_stripe_links_one_live_link_per_account",
            "clinic_id",
            "account_id",
            unique=True,
            sqlite_where=text("state = 'linked'"),
            postgresql_where=text("state = 'linked'"),
        ),
        Index(
            "uq_stripe_links_one_default_per_clinic",
            "clinic_id",
            unique=True,
            sqlite_where=text("state = 'linked' AND is_default"),
            postgresql_where=text("state = 'linked' AND is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"), index=True)
    # The connected account's id; vcpay acts as the clinic with it and keeps no token.
    account_id: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(20), default=LinkState.LINKED.value)
    linked_at: Mapped[datetime]
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    removed_at: Mapped[datetime | None]
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    removal_cause: Mapped[str | None] = mapped_column(String(20))
    # What the clinic's admins call the account (Stripe's display name until they rename it).
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # The account the clinic's payments go to unless their clinician is routed elsewhere.
    is_default: Mapped[bool] = mapped_column(default=False, server_default=false())

    # What Stripe last said about the account, for the page; refreshed on account.updated.
    display_name: Mapped[str] = mapped_column(String(200), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    charges_enabled: Mapped[bool] = mapped_column(default=False)
    payouts_enabled: Mapped[bool] = mapped_column(default=False)
    details_submitted: Mapped[bool] = mapped_column(default=False)
    requirements_due: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled_reason: Mapped[str | None] = mapped_column(String(100))
    refreshed_at: Mapped[datetime]

    clinic: Mapped[Clinic] = relationship()
    linked_by: Mapped[User | None] = relationship(foreign_keys=[linked_by_id])
    removed_by: Mapped[User | None] = relationship(foreign_keys=[removed_by_id])

    @property
    def is_live(self) -> bool:
        return self.state == LinkState.LINKED

    @property
    def label(self) -> str:
        return self.name or self.display_name or self.account_id

    def __repr__(self) -> str:
        return f"<StripeLink {self.id} clinic={self.clinic_id} {self.account_id} {self.state}>"


class AccountRoute(CreatedAtMixin, db.Model):
    """A clinician's payments in a clinic go to this link rather than the clinic's default."""

    __tablename__ = "stripe_account_routes"
    __table_args__ = (UniqueConstraint("clinic_id", "clinician_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"))
    clinician_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    link_id: Mapped[int] = mapped_column(
        ForeignKey("stripe_links.id", ondelete="CASCADE"), index=True
    )

    clinic: Mapped[Clinic] = relationship()
    clinician: Mapped[User] = relationship()
    link: Mapped[StripeLink] = relationship()


class AttemptOutcome(enum.StrEnum):
    LINKED = "linked"
    DENIED = "denied"
    FAILED = "failed"


class StripeOAuthAttempt(CreatedAtMixin, db.Model):
    """One press of "Go to Stripe": the nonce behind the OAuth ``state``, used at most once."""

    __tablename__ = "stripe_oauth_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    used_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(String(300), default="")

    clinic: Mapped[Clinic] = relationship()
