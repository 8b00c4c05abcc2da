"""Payouts read from Stripe and kept in vcpay, with the balance transactions each contains,
so a clinic can match a bank deposit to the patients who paid it."""

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vcpay.extensions import db
from vcpay.payments.models import PaymentRequest


class Payout(db.Model):
    __tablename__ = "payouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_account_id: Mapped[str] = mapped_column(String(64), index=True)
    payout_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int]  # minor units (cents)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))  # Stripe's: pending, in_transit, paid...
    arrival_date: Mapped[datetime]
    created: Mapped[datetime]  # when Stripe made it
    failure_message: Mapped[str] = mapped_column(String(300), default="")
    # When its balance transactions were last read; None until they have been.
    contents_read_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    transactions: Mapped[list["PayoutTransaction"]] = relationship(
        back_populates="payout", cascade="all, delete-orphan", order_by="PayoutTransaction.id"
    )

    def __repr__(self) -> str:
        return f"<Payout {self.payout_id} {self.amount} {self.status}>"


class PayoutTransaction(db.Model):
    """One balance transaction of a payout: a charge, a refund, a fee, the payout itself."""

    __tablename__ = "payout_transactions"
    __table_args__ = (UniqueConstraint("payout_row_id", "balance_transaction_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payout_row_id: Mapped[int] = mapped_column(
        ForeignKey("payouts.id", ondelete="CASCADE"), index=True
    )
    balance_transaction_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(40))  # Stripe's: charge, refund, payout...
    reporting_category: Mapped[str] = mapped_column(String(40), default="")
    amount: Mapped[int]
    fee: Mapped[int] = mapped_column(default=0)
    net: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    source_id: Mapped[str] = mapped_column(String(255), default="")  # ch_, re_, po_...
    # The payment it is about, when it is one of vcpay's (matched by charge).
    payment_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("payment_requests.id", ondelete="SET NULL"), index=True
    )
    description: Mapped[str] = mapped_column(String(300), default="")
    created: Mapped[datetime]

    payout: Mapped[Payout] = relationship(back_populates="transactions")
    payment_request: Mapped[PaymentRequest | None] = relationship()
