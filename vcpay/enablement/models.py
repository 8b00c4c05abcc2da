"""Requests to switch the Payment Gateway on, raised in the Jira service desk."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vcpay.database import CreatedAtMixin, utcnow
from vcpay.extensions import db
from vcpay.people.models import Clinic, Organisation, User


class RequestState(enum.StrEnum):
    DRAFT = "draft"
    AWAITING_ENDORSEMENT = "awaiting_endorsement"
    SENT_BACK = "sent_back"
    QUEUED = "queued"
    RAISED = "raised"
    APPROVED = "approved"
    DECLINED = "declined"
    NEEDS_REVIEW = "needs_review"
    WITHDRAWN = "withdrawn"


# Still waiting on someone: the clinics in them cannot be asked for again.
OPEN_STATES = frozenset(
    {
        RequestState.DRAFT,
        RequestState.AWAITING_ENDORSEMENT,
        RequestState.SENT_BACK,
        RequestState.QUEUED,
        RequestState.RAISED,
        RequestState.NEEDS_REVIEW,
    }
)
# In the service desk: what polling watches.
IN_SERVICE_DESK = frozenset({RequestState.RAISED, RequestState.NEEDS_REVIEW})
EDITABLE_STATES = frozenset({RequestState.DRAFT, RequestState.SENT_BACK})


def new_correlation_id() -> str:
    return f"vcpay-er-{uuid.uuid4().hex[:16]}"


class EnablementRequest(CreatedAtMixin, db.Model):
    __tablename__ = "enablement_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    # Written into the Jira request, so a retry can find what an earlier attempt created.
    correlation_id: Mapped[str] = mapped_column(String(40), unique=True, default=new_correlation_id)
    state: Mapped[str] = mapped_column(String(30), default=RequestState.DRAFT.value, index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    contact_name: Mapped[str] = mapped_column(String(200), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    terms_accepted_at: Mapped[datetime | None]
    notes: Mapped[str] = mapped_column(Text, default="")
    submitted_at: Mapped[datetime | None]
    endorsed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    endorsed_at: Mapped[datetime | None]
    sent_back_reason: Mapped[str | None] = mapped_column(Text)

    # The service desk side.
    jira_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    jira_status: Mapped[str | None] = mapped_column(String(100))
    jira_resolution: Mapped[str | None] = mapped_column(String(100))
    # Jira's own "updated" stamp of the last version vcpay processed, as Jira wrote it.
    jira_updated: Mapped[str | None] = mapped_column(String(40))
    raised_at: Mapped[datetime | None]
    raise_attempts: Mapped[int] = mapped_column(default=0)
    # An attempt may have reached Jira without vcpay hearing back: search before raising again.
    raise_outcome_unknown: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set by the worker raising it now (see vcpay.claims): two workers never both raise it.
    raise_claimed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_error_at: Mapped[datetime | None]

    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    review_reason: Mapped[str | None] = mapped_column(Text)
    comment_posted_at: Mapped[datetime | None]
    comment_claimed_at: Mapped[datetime | None]  # by the worker commenting now
    withdrawn_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    organisation: Mapped[Organisation] = relationship()
    requester: Mapped[User] = relationship(foreign_keys=[requester_id])
    endorsed_by: Mapped[User | None] = relationship(foreign_keys=[endorsed_by_id])
    clinics: Mapped[list["RequestedClinic"]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="RequestedClinic.id"
    )
    events: Mapped[list["RequestEvent"]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="RequestEvent.id"
    )

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_editable(self) -> bool:
        return self.state in EDITABLE_STATES

    def __repr__(self) -> str:
        return f"<EnablementRequest {self.id} {self.state} {self.jira_key}>"


class RequestedClinic(db.Model):
    __tablename__ = "enablement_request_clinics"
    __table_args__ = (UniqueConstraint("request_id", "clinic_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("enablement_requests.id", ondelete="CASCADE"), index=True
    )
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id"), index=True)
    has_stripe_account: Mapped[bool] = mapped_column(Boolean, default=False)
    # The account's email or business name: helps the service desk check it.
    stripe_account_hint: Mapped[str] = mapped_column(String(200), default="")

    request: Mapped[EnablementRequest] = relationship(back_populates="clinics")
    clinic: Mapped[Clinic] = relationship()


class RequestEvent(db.Model):
    """The timeline shown on a request: drafted, endorsed, raised, decided, and the rest."""

    __tablename__ = "enablement_request_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("enablement_requests.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Entries written before codes were stored hold English text here and no parameters.
    message: Mapped[str] = mapped_column(Text, default="")
    # The code's parameters (names, keys), worded in the reader's language when shown.
    params: Mapped[dict | None] = mapped_column(JSON)

    request: Mapped[EnablementRequest] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()


class JiraPollCursor(db.Model):
    """Where the last poll got to: the newest ``updated`` seen, as Jira wrote it."""

    __tablename__ = "jira_poll_cursors"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    updated: Mapped[datetime | None]
    polled_at: Mapped[datetime | None]  # the start of the last poll that succeeded
    swept_at: Mapped[datetime | None]
    # How polling is going, for /readyz and /metrics (poll_health.py): when the last poll
    # ended either way, why it failed if it did, and failures in a row and in all.
    attempted_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    failures: Mapped[int] = mapped_column(default=0, server_default="0")
    errors: Mapped[int] = mapped_column(default=0, server_default="0")
