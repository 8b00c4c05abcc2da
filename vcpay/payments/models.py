"""A payment request: asked for in a call, paid on Stripe Checkout, maybe refunded."""

import enum
from datetime import datetime

from flask_babel import gettext
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vcpay.calls.models import Call, Participant
from vcpay.database import CreatedAtMixin
from vcpay.extensions import db
from vcpay.people.models import Clinic, User

# The reason a refund made in the Stripe dashboard is recorded with (data, not a message).
MADE_IN_STRIPE = "Made in Stripe"

MINIMUM_AMOUNT = 50  # A$0.50, Stripe's minimum for AUD
MAXIMUM_AMOUNT = 99_999_999  # A$999,999.99, eight digits in cents


class PaymentState(enum.StrEnum):
    REQUESTED = "requested"  # waiting for the patient (a declined card leaves it here)
    PROCESSING = "processing"  # paid with a method that settles later
    PAID = "paid"
    FAILED = "failed"  # a delayed payment that did not settle
    CANCELLED = "cancelled"  # by the clinician, or because the Stripe link was removed
    EXPIRED = "expired"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


OPEN_STATES = frozenset({PaymentState.REQUESTED, PaymentState.PROCESSING})
SETTLED_STATES = frozenset(
    {PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED}
)


class PaymentRequest(CreatedAtMixin, db.Model):
    __tablename__ = "payment_requests"
    __table_args__ = (
        CheckConstraint(
            f"amount >= {MINIMUM_AMOUNT} AND amount <= {MAXIMUM_AMOUNT}", name="amount_in_range"
        ),
        CheckConstraint("amount_refunded >= 0 AND amount_refunded <= amount", name="refund_range"),
        # The back office lists a clinic's payments newest first, a page at a time (keyset).
        Index("ix_payment_requests_clinic_id_created_at", "clinic_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Made when the clinician's form is shown: a second click sends the same key and
    # finds the request the first one made (and Stripe replays the same session).
    request_key: Mapped[str] = mapped_column(String(40), unique=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Who in the call is asked to pay. None: nobody in particular ("anyone", or asked before
    # anyone joined); the first participant to press Pay now becomes the payer (payers.take_on).
    payer_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_participants.id", ondelete="SET NULL")
    )
    amount: Mapped[int]  # minor units (cents)
    currency: Mapped[str] = mapped_column(String(3), default="aud")
    description: Mapped[str] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(20), default=PaymentState.REQUESTED.value, index=True)
    updated_at: Mapped[datetime]

    # The clinic's Stripe account when asked, and the Checkout Session made on it.
    stripe_account_id: Mapped[str] = mapped_column(String(64))
    # None for a charge to a saved card (``off_session``): it has no Checkout page.
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    checkout_url: Mapped[str | None] = mapped_column(String(2000))
    expires_at: Mapped[datetime]

    payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # The charge that paid it: refunds and payouts' balance transactions name it.
    charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # Stripe's fee for the charge, once its balance transaction has been read.
    stripe_fee: Mapped[int | None]
    paid_at: Mapped[datetime | None]
    patient_name: Mapped[str] = mapped_column(String(80), default="")
    patient_email: Mapped[str] = mapped_column(String(254), default="")
    # The language of the page the patient paid from: their receipt is written in it.
    patient_locale: Mapped[str] = mapped_column(String(16), default="")
    receipt_number: Mapped[str] = mapped_column(String(64), default="")
    card_brand: Mapped[str] = mapped_column(String(20), default="")
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    amount_refunded: Mapped[int] = mapped_column(default=0)
    last_decline: Mapped[str] = mapped_column(String(300), default="")
    # The clinician saw the "payment received" popup; until then it is shown again.
    acknowledged_at: Mapped[datetime | None]
    reconciled_at: Mapped[datetime | None]
    # The call's fee before joining (``CallFee``), asked of its payer when they pressed Pay now
    # on the pay-first page; otherwise a request the clinician made in the call.
    pay_first: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Charged by the clinician to a card the patient saved (no Checkout page: no session).
    off_session: Mapped[bool] = mapped_column(default=False, server_default=false())
    saved_card_id: Mapped[int | None] = mapped_column(
        ForeignKey("saved_cards.id", ondelete="SET NULL")
    )

    call: Mapped[Call] = relationship()
    clinic: Mapped[Clinic] = relationship()
    requested_by: Mapped[User | None] = relationship()
    payer: Mapped[Participant | None] = relationship()

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_settled(self) -> bool:
        """Paid, whatever has been refunded since: the patient sees it as paid."""
        return self.state in SETTLED_STATES

    @property
    def is_refunded(self) -> bool:
        """Part or all of it has been given back."""
        return self.state in (PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED)

    def payable_by(self, participant: Participant | None) -> bool:
        """Whether this participant may pay it and see its receipt: the payer, or one the
        clinician recognised as them (never by name: anyone can type a name). Asked of nobody
        in particular, anyone in the call may take it on while it waits to be paid; a receipt
        is only ever the payer's, so without one nobody sees it through the call."""
        if participant is None or participant.call_id != self.call_id:
            return False
        if self.payer is None:
            return self.state == PaymentState.REQUESTED
        return participant.person_id == self.payer.person_id

    @property
    def amount_remaining(self) -> int:
        """What can still be refunded."""
        return self.amount - self.amount_refunded

    def __repr__(self) -> str:
        return f"<PaymentRequest {self.id} {self.amount} {self.currency} {self.state}>"


class CallFee(CreatedAtMixin, db.Model):
    """What each patient pays before they see the call, set when the call was started; each
    payment of it is a ``PaymentRequest`` marked ``pay_first``."""

    __tablename__ = "call_fees"
    __table_args__ = (
        CheckConstraint(
            f"amount >= {MINIMUM_AMOUNT} AND amount <= {MAXIMUM_AMOUNT}", name="amount_in_range"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    amount: Mapped[int]  # minor units (cents)
    currency: Mapped[str] = mapped_column(String(3), default="aud")
    description: Mapped[str] = mapped_column(String(120))
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    call: Mapped[Call] = relationship()
    set_by: Mapped[User | None] = relationship()

    @property
    def clinic(self) -> Clinic:
        """Its scope, for the audit log."""
        return self.call.clinic


class FeeWaiver(CreatedAtMixin, db.Model):
    """The clinician let this participant in without paying the call's fee: one row each."""

    __tablename__ = "call_fee_waivers"

    id: Mapped[int] = mapped_column(primary_key=True)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("call_participants.id", ondelete="CASCADE"), unique=True
    )
    waived_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    participant: Mapped[Participant] = relationship()
    waived_by: Mapped[User | None] = relationship()

    @property
    def clinic(self) -> Clinic:
        """Its scope, for the audit log."""
        return self.participant.call.clinic


class SavedCard(CreatedAtMixin, db.Model):
    """A card a patient saved when joining a call, on the Stripe account the call's payments
    are made on, with the consent they gave; charged after the call by the clinician. Made
    when the patient goes to Stripe (``setup_session_id``), saved once Stripe says so."""

    __tablename__ = "saved_cards"
    __table_args__ = (UniqueConstraint("account_id", "payment_method_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(ForeignKey("clinics.id", ondelete="CASCADE"), index=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(
        ForeignKey("call_participants.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(255))
    setup_session_id: Mapped[str] = mapped_column(String(255), unique=True)
    setup_url: Mapped[str] = mapped_column(String(2000))
    payment_method_id: Mapped[str | None] = mapped_column(String(255))
    brand: Mapped[str] = mapped_column(String(20), default="")
    last4: Mapped[str] = mapped_column(String(4), default="")
    exp_month: Mapped[int | None]
    exp_year: Mapped[int | None]
    email: Mapped[str] = mapped_column(String(254), default="")
    consent_version: Mapped[str] = mapped_column(String(20))
    saved_at: Mapped[datetime | None] = mapped_column(index=True)
    removed_at: Mapped[datetime | None]
    removed_cause: Mapped[str] = mapped_column(String(20), default="")

    clinic: Mapped[Clinic] = relationship()
    call: Mapped[Call] = relationship()
    participant: Mapped[Participant] = relationship()

    @property
    def is_usable(self) -> bool:
        return self.saved_at is not None and self.removed_at is None

    def __repr__(self) -> str:
        return f"<SavedCard {self.id} {self.brand} {self.last4}>"


class RefundState(enum.StrEnum):
    # Stripe's refund statuses; ``asking`` is vcpay's own, before Stripe has answered.
    ASKING = "asking"
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class PaymentRefund(CreatedAtMixin, db.Model):
    """One refund of a paid request: asked for in vcpay, or made in the Stripe dashboard and
    learnt from its events. Its state follows Stripe's refund, whichever event comes first."""

    __tablename__ = "payment_refunds"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payment_request_id: Mapped[int] = mapped_column(
        ForeignKey("payment_requests.id", ondelete="CASCADE"), index=True
    )
    # Made when the refund form is shown: a second click finds the refund the first made
    # (and Stripe replays it). None for a refund made in the Stripe dashboard.
    refund_key: Mapped[str | None] = mapped_column(String(40), unique=True)
    stripe_refund_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    amount: Mapped[int]  # minor units (cents)
    reason: Mapped[str] = mapped_column(String(300), default="")
    state: Mapped[str] = mapped_column(String(20), default=RefundState.ASKING.value)
    failure_reason: Mapped[str] = mapped_column(String(100), default="")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime]

    payment_request: Mapped[PaymentRequest] = relationship()
    requested_by: Mapped[User | None] = relationship()

    @property
    def shown_reason(self) -> str:
        """The reason for people; a refund made in Stripe's dashboard says so in their language."""
        return gettext("Made in Stripe") if self.reason == MADE_IN_STRIPE else self.reason

    def __repr__(self) -> str:
        return f"<PaymentRefund {self.id} {self.amount} {self.state}>"
