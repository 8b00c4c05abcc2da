"""What a payout carried, grouped as a clinic reads its bank deposit: payments, refunds,
other movements (a failed payout's money coming back), Stripe's fees, and the net that
adds up to the payout to the cent."""

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from vcpay.extensions import db
from vcpay.payments.models import PaymentRequest
from vcpay.payouts.models import Payout, PayoutTransaction

PAYMENT_TYPES = frozenset({"charge", "payment"})
REFUND_TYPES = frozenset({"refund", "payment_refund", "refund_failure", "payment_failure_refund"})
# The payout's own transaction: the money leaving the balance for the bank, not a content.
OWN_TYPES = frozenset({"payout"})


@dataclass
class PayoutContents:
    payments: list[PayoutTransaction] = field(default_factory=list)
    refunds: list[PayoutTransaction] = field(default_factory=list)
    other: list[PayoutTransaction] = field(default_factory=list)
    read: bool = False

    @property
    def lines(self) -> list[PayoutTransaction]:
        return [*self.payments, *self.refunds, *self.other]

    @property
    def gross(self) -> int:
        return sum(t.amount for t in self.payments)

    @property
    def refunded(self) -> int:
        """What refunds took back (negative), net of refunds that failed."""
        return sum(t.amount for t in self.refunds)

    @property
    def other_total(self) -> int:
        return sum(t.amount for t in self.other)

    @property
    def fees(self) -> int:
        return sum(t.fee for t in self.lines)

    @property
    def net(self) -> int:
        return sum(t.net for t in self.lines)


def is_content(transaction: PayoutTransaction) -> bool:
    return transaction.type not in OWN_TYPES


def kind_of(transaction: PayoutTransaction) -> str:
    if transaction.type in PAYMENT_TYPES:
        return "payment"
    if transaction.type in REFUND_TYPES:
        return "refund"
    return "other"


def transactions_query(payout: Payout):
    """The payout's contents, oldest first, each with the payment it is about."""
    return (
        select(PayoutTransaction)
        .where(PayoutTransaction.payout_row_id == payout.id)
        .where(PayoutTransaction.type.not_in(OWN_TYPES))
        .options(
            joinedload(PayoutTransaction.payment_request).joinedload(PaymentRequest.requested_by)
        )
        .order_by(PayoutTransaction.created, PayoutTransaction.id)
    )


def contents_of(payout: Payout) -> PayoutContents:
    contents = PayoutContents(read=payout.contents_read_at is not None)
    groups = {"payment": contents.payments, "refund": contents.refunds, "other": contents.other}
    for transaction in db.session.scalars(transactions_query(payout)):
        groups[kind_of(transaction)].append(transaction)
    return contents


TYPE_LABELS = {
    "charge": _l("Payment"),
    "payment": _l("Payment"),
    "refund": _l("Refund"),
    "payment_refund": _l("Refund"),
    "refund_failure": _l("Refund failed, money returned"),
    "payment_failure_refund": _l("Refund failed, money returned"),
    "payout_failure": _l("Failed payout, money returned"),
    "adjustment": _l("Adjustment"),
}


def type_label(transaction: PayoutTransaction) -> str:
    return str(TYPE_LABELS.get(transaction.type, transaction.type.replace("_", " ")))


STATUS_LABELS = {
    "pending": _l("Pending"),
    "in_transit": _l("In transit"),
    "paid": _l("Paid"),
    "failed": _l("Failed"),
    "canceled": _l("Cancelled"),
}


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status.replace("_", " ")))
