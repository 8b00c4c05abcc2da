"""A payment's whole story, from what vcpay has recorded: who asked for it in which call,
each declined attempt and its reason (the call's events), the payment, each receipt email,
each refund and the payout it went into. Oldest first."""

from dataclasses import dataclass
from datetime import datetime

from flask import current_app, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select

from vcpay.calls.events import CallEventKind
from vcpay.calls.models import CallEvent
from vcpay.extensions import db
from vcpay.mail.models import EmailState, OutboundEmail
from vcpay.payments.amounts import format_amount
from vcpay.payments.models import PaymentRefund, PaymentRequest, RefundState
from vcpay.payouts.models import Payout, PayoutTransaction

# What each call event of a request says on its timeline; requested and paid are told from
# the request itself, which knows more (who asked, the card).
EVENT_TEXTS = {
    CallEventKind.PAYMENT_DECLINED: lambda data: _(
        "A card was declined: %(why)s", why=data.get("message") or _("no reason given")
    ),
    CallEventKind.PAYMENT_PROCESSING: lambda data: _("Paid by a delayed method, waiting to clear"),
    CallEventKind.PAYMENT_FAILED: lambda data: _("The delayed payment failed"),
    CallEventKind.PAYMENT_EXPIRED: lambda data: _("Expired without being paid"),
    CallEventKind.PAYMENT_CANCELLED: lambda data: _("Cancelled"),
    CallEventKind.PAYMENT_REFUNDED: lambda data: _(
        "Refunded in all so far: %(amount)s", amount=data.get("refunded", "")
    ),
}


REFUND_STATES = {
    RefundState.ASKING: _l("being asked of Stripe"),
    RefundState.PENDING: _l("pending"),
    RefundState.REQUIRES_ACTION: _l("needs action in Stripe"),
    RefundState.SUCCEEDED: _l("succeeded"),
    RefundState.FAILED: _l("failed"),
    RefundState.CANCELED: _l("cancelled"),
}
# Stripe's payout statuses.
PAYOUT_STATUSES = {
    "pending": _l("pending"),
    "in_transit": _l("on its way to the bank"),
    "paid": _l("paid into the bank"),
    "failed": _l("failed"),
    "canceled": _l("cancelled"),
}


@dataclass(frozen=True)
class Moment:
    at: datetime
    kind: str  # for the page's styling: requested, declined, paid, receipt, refund, payout...
    text: str
    link: str | None = None


def _who(user) -> str:
    return user.name if user is not None else _("a former user")


def _requested(payment: PaymentRequest) -> Moment:
    call = payment.call
    text = _(
        "Requested by %(who)s in the call “%(call)s” (call %(id)s)",
        who=_who(payment.requested_by),
        call=call.title or _("untitled"),
        id=call.id,
    )
    return Moment(payment.created_at, "requested", text)


def _paid(payment: PaymentRequest) -> list[Moment]:
    if payment.paid_at is None:
        return []
    parts = [_("Paid %(amount)s", amount=format_amount(payment.amount, payment.currency))]
    if payment.card_last4:
        parts.append(
            _(
                "%(brand)s card ending %(last4)s",
                brand=payment.card_brand.title(),
                last4=payment.card_last4,
            )
        )
    if payment.receipt_number:
        parts.append(_("receipt %(number)s", number=payment.receipt_number))
    return [Moment(payment.paid_at, "paid", ", ".join(parts))]


def _call_events(payment: PaymentRequest) -> list[Moment]:
    events = db.session.scalars(
        select(CallEvent)
        .where(CallEvent.call_id == payment.call_id, CallEvent.kind.in_(list(EVENT_TEXTS)))
        .order_by(CallEvent.id)
    )
    return [
        Moment(event.created_at, event.kind.removeprefix("payment_"), EVENT_TEXTS[event.kind](data))
        for event in events
        if (data := event.data or {}).get("request") == payment.request_key
    ]


def receipt_key(payment: PaymentRequest) -> str:
    """The receipt's outbox key when it was paid (see vcpay.payments.transitions)."""
    return f"receipt:{payment.id}"


def _receipts(payment: PaymentRequest) -> list[Moment]:
    key = receipt_key(payment)
    emails = db.session.scalars(
        select(OutboundEmail)
        .where(or_(OutboundEmail.dedupe_key == key, OutboundEmail.dedupe_key.like(f"{key}:%")))
        .order_by(OutboundEmail.id)
    )
    moments = []
    for email in emails:
        if email.state == EmailState.SENT.value:
            text = _("Receipt emailed to %(email)s", email=email.recipient)
        else:
            text = _("Receipt to %(email)s waiting to be sent", email=email.recipient)
        moments.append(Moment(email.sent_at or email.created_at, "receipt", text))
    return moments


def refunds_of(payment: PaymentRequest) -> list[PaymentRefund]:
    return list(
        db.session.scalars(
            select(PaymentRefund)
            .filter_by(payment_request_id=payment.id)
            .order_by(PaymentRefund.created_at, PaymentRefund.id)
        )
    )


def _refunds(payment: PaymentRequest) -> list[Moment]:
    moments = []
    for refund in refunds_of(payment):
        text = _(
            "Refund of %(amount)s by %(who)s (%(state)s)",
            amount=format_amount(refund.amount, payment.currency),
            who=_who(refund.requested_by) if refund.refund_key else _("the Stripe dashboard"),
            state=REFUND_STATES.get(refund.state, refund.state),
        )
        if refund.reason:
            text += " · " + _("Reason: %(reason)s", reason=refund.shown_reason)
        if refund.failure_reason:
            text += " · " + _("Stripe said: %(why)s", why=refund.failure_reason.replace("_", " "))
        moments.append(Moment(refund.created_at, "refund", text))
    return moments


def payouts_of(payment: PaymentRequest) -> list[Payout]:
    return list(
        db.session.scalars(
            select(Payout)
            .join(PayoutTransaction, PayoutTransaction.payout_row_id == Payout.id)
            .where(PayoutTransaction.payment_request_id == payment.id)
            .distinct()
            .order_by(Payout.created)
        )
    )


def _payouts(payment: PaymentRequest) -> list[Moment]:
    has_page = "payouts.detail" in current_app.view_functions
    return [
        Moment(
            payout.created,
            "payout",
            _(
                "In payout %(payout)s of %(amount)s (%(status)s)",
                payout=payout.payout_id,
                amount=format_amount(payout.amount, payout.currency),
                status=PAYOUT_STATUSES.get(payout.status, payout.status),
            ),
            url_for("payouts.detail", payout_id=payout.id) if has_page else None,
        )
        for payout in payouts_of(payment)
    ]


def timeline_of(payment: PaymentRequest) -> list[Moment]:
    moments = [_requested(payment), *_call_events(payment), *_paid(payment)]
    moments += [*_receipts(payment), *_refunds(payment), *_payouts(payment)]
    return sorted(moments, key=lambda moment: moment.at)
