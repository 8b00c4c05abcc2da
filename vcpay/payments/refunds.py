"""Refunding a paid request, and following each refund to the state Stripe gives it.

A refund asked for in vcpay is a row first (state ``asking``, the form's key, unique), then
one Stripe refund made with an idempotency key derived from that key: of a double click's two
posts, the second waits on the first's row and finds it. If Stripe cannot be reached, the row
is rolled back with everything else, so nothing is left to explain.

Afterwards a refund's state follows what Stripe says of it when asked again, whichever event
prompted the asking (``refund.*``, ``charge.refunded``), in any order, however often: a row
only moves forward (compare and set), the request's refunded amount follows its charge. A
refund made in the Stripe dashboard gets its row from the first event about it. Longer than
most modules because asking for a refund and following it share the one row and its guard.
"""

import re
import time
from dataclasses import dataclass

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from vcpay.audit.services import record_audit
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.inputs import TEXT_CONTROL_MESSAGE, has_control_character
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import RefundTooLarge, StripeApiError, StripeUnavailable
from vcpay.integrations.stripe_values import RefundSummary
from vcpay.mail.services import queue_email
from vcpay.notices.services import Notice, notify_clinic_admins
from vcpay.payments.amounts import AmountInvalid, format_amount, parse_amount
from vcpay.payments.models import (
    MADE_IN_STRIPE,
    PaymentRefund,
    PaymentRequest,
    PaymentState,
    RefundState,
)
from vcpay.payments.transitions import NotTheRequests, follow_refunded_amount
from vcpay.people.models import User
from vcpay.public_urls import public_url_for

REASON_MAX = 300
REFUND_KEY = re.compile(r"^[A-Za-z0-9_-]{16,40}$")
# Stripe's own reason for every refund vcpay asks for; the clinic's words go in metadata.
STRIPE_REASON = "requested_by_customer"
# A refund vcpay asked for whose row is not visible yet is still being stored by the page
# that asked (its transaction commits once Stripe has answered): its events wait this long
# for it before the refund is recorded from Stripe alone.
STORING_GRACE_SECONDS = 120

# A row's state only moves forward along Stripe's lifecycle: an older answer changes nothing.
PROGRESS = {
    RefundState.ASKING: 0,
    RefundState.REQUIRES_ACTION: 1,
    RefundState.PENDING: 2,
    RefundState.SUCCEEDED: 3,
    RefundState.FAILED: 4,
    RefundState.CANCELED: 4,
}
# Stripe gives these refunds' money back: the charge counts it unrefunded again.
GIVEN_BACK = frozenset({RefundState.FAILED, RefundState.CANCELED})

# Stripe's refund failure reasons, as the clinic admins are told them.
FAILURE_REASONS = {
    "lost_or_stolen_card": _l("the card was reported lost or stolen"),
    "expired_or_canceled_card": _l("the card has expired or was cancelled"),
    "charge_for_pending_refund_disputed": _l("the patient disputed the payment"),
    "insufficient_funds": _l("the clinic's Stripe balance could not cover it"),
    "declined": _l("the card's bank declined it"),
    "merchant_request": _l("it was cancelled at the clinic's request"),
}


class RefundRefused(Exception):
    """Nothing was refunded; ``field`` names the form field at fault, if any; ``unavailable``
    when Stripe could not be reached (the same form may work later); ``by_stripe`` when
    Stripe said no, which it remembers for the form's idempotency key (a changed form needs
    a new key)."""

    def __init__(
        self,
        message: str,
        field: str | None = None,
        unavailable: bool = False,
        by_stripe: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.field = field
        self.unavailable = unavailable
        self.by_stripe = by_stripe


class RefundNotStoredYet(Exception):
    """An event about a refund vcpay asked for moments ago, before the page that asked has
    stored it: processed again later (the event is retried)."""


@dataclass(frozen=True)
class RefundAsked:
    """The refund form as typed: checked by ``refund_payment``."""

    amount: str
    whole: bool  # the form says "full": the whole amount that remains
    reason: str
    refund_key: str


@dataclass(frozen=True)
class Refunded:
    refund: PaymentRefund
    repeated: bool  # a second post of the same form: the first post's refund


def refund_payment(
    request: PaymentRequest, asked: RefundAsked, user: User, stripe_api: StripeApi
) -> Refunded:
    """Refund part or all of a paid request with one Stripe refund; the caller commits.
    Refused (``RefundRefused``) with nothing changed if the form is wrong or Stripe says no."""
    if not REFUND_KEY.match(asked.refund_key or ""):
        raise RefundRefused(_("The form expired; please try again."))
    if (earlier := refund_with_key(asked.refund_key)) is not None:
        return _repeated(request, earlier)
    _check_refundable(request)
    amount = _amount(request, asked)
    reason = _reason(asked.reason)
    row = PaymentRefund(
        payment_request=request,
        refund_key=asked.refund_key,
        amount=amount,
        reason=reason,
        state=RefundState.ASKING.value,
        requested_by=user,
        updated_at=utcnow(),
    )
    db.session.add(row)
    try:
        db.session.flush()  # a second post of the form waits here until the first is done
    except IntegrityError:
        db.session.rollback()
        return _repeated(request, refund_with_key(asked.refund_key))
    try:
        refund = stripe_api.create_refund(
            request.stripe_account_id,
            request.payment_intent_id,
            amount,
            STRIPE_REASON,
            f"vcpay-refund-{asked.refund_key}",
            {"payment_request": request.request_key, "refund_key": asked.refund_key},
        )
    except StripeApiError as error:
        db.session.rollback()  # the row goes: nothing was refunded
        raise _not_refunded(request, error) from None
    row.stripe_refund_id = refund.id
    record_audit("payment.refunded", request, actor=user, amount=amount, reason=reason)
    apply_refund(request, refund)
    return Refunded(row, repeated=False)


def refund_with_key(refund_key: str) -> PaymentRefund | None:
    return db.session.scalar(select(PaymentRefund).filter_by(refund_key=refund_key))


def refunds_of(request: PaymentRequest) -> list[PaymentRefund]:
    """The request's refunds, oldest first."""
    return list(
        db.session.scalars(
            select(PaymentRefund)
            .filter_by(payment_request_id=request.id)
            .order_by(PaymentRefund.id)
        )
    )


def _repeated(request: PaymentRequest, earlier: PaymentRefund | None) -> Refunded:
    if earlier is None or earlier.payment_request_id != request.id:
        raise RefundRefused(_("The form expired; please try again."))
    return Refunded(earlier, repeated=True)


def _check_refundable(request: PaymentRequest) -> None:
    if request.state == PaymentState.REFUNDED or (
        request.is_settled and request.amount_remaining <= 0
    ):
        raise RefundRefused(_("This payment has already been refunded in full."))
    if not request.is_settled or not request.payment_intent_id:
        raise RefundRefused(_("Only a paid payment can be refunded."))


def _amount(request: PaymentRequest, asked: RefundAsked) -> int:
    remaining = request.amount_remaining
    if asked.whole:
        return remaining
    if not (asked.amount or "").strip():
        raise RefundRefused(
            _("Enter the amount to refund, for example 20.00, or choose the full amount."),
            "amount",
        )
    try:
        amount = parse_amount(asked.amount)
    except AmountInvalid as invalid:
        raise RefundRefused(invalid.message, "amount") from None
    if amount > remaining:
        raise RefundRefused(_more_than_remains(request, remaining), "amount")
    return amount


def _more_than_remains(request: PaymentRequest, remaining: int) -> str:
    return _(
        "That is more than remains to refund: %(remaining)s of the %(amount)s paid.",
        remaining=format_amount(remaining, request.currency),
        amount=format_amount(request.amount, request.currency),
    )


def _reason(text: str) -> str:
    if has_control_character(text or ""):
        raise RefundRefused(str(TEXT_CONTROL_MESSAGE), "reason")
    reason = " ".join((text or "").split())
    if not reason:
        raise RefundRefused(
            _("Enter the reason for the refund: it is kept with the payment's record."), "reason"
        )
    if len(reason) > REASON_MAX:
        raise RefundRefused(
            _("Keep the reason to %(max)s characters or fewer.", max=REASON_MAX), "reason"
        )
    return reason


def _not_refunded(request: PaymentRequest, error: StripeApiError) -> RefundRefused:
    if isinstance(error, StripeUnavailable):
        return RefundRefused(
            _("Stripe could not be reached, so nothing was refunded. Please try again shortly."),
            unavailable=True,
        )
    if isinstance(error, RefundTooLarge) and error.remaining is not None:
        if error.remaining <= 0:
            message = _("Stripe says this payment has already been refunded in full.")
            return RefundRefused(message, by_stripe=True)
        return RefundRefused(_more_than_remains(request, error.remaining), "amount", by_stripe=True)
    message = _("Stripe refused the refund, so nothing was refunded: %(why)s", why=error.words)
    return RefundRefused(message, by_stripe=True)


# Following Stripe.


def request_for_refund(
    refund_id: str, payment_intent_id: str | None, charge_id: str | None
) -> PaymentRequest | None:
    """The request a refund event is about, by the refund's row, else the payment intent or
    charge the event names (a hint: the caller checks the account, then asks Stripe)."""
    row = db.session.scalar(select(PaymentRefund).filter_by(stripe_refund_id=refund_id))
    if row is not None:
        return row.payment_request
    for column, value in (
        (PaymentRequest.payment_intent_id, payment_intent_id),
        (PaymentRequest.charge_id, charge_id),
    ):
        if value and (found := db.session.scalar(select(PaymentRequest).where(column == value))):
            return found
    return None


def follow_refund(request: PaymentRequest, refund_id: str, stripe_api: StripeApi) -> bool:
    """Ask Stripe about one refund, on the request's account, and apply what it says."""
    refund = stripe_api.retrieve_refund(request.stripe_account_id, refund_id)
    db.session.refresh(request)  # another event may have moved it while Stripe answered
    return apply_refund(request, refund)


def follow_refunds(request: PaymentRequest, stripe_api: StripeApi) -> bool:
    """Ask Stripe for every refund of the request's payment and apply each (their rows; the
    request's amount is the caller's, read from its charge). True if any moved."""
    if not request.payment_intent_id:
        return False
    found = stripe_api.list_refunds(request.stripe_account_id, request.payment_intent_id)
    moved = [apply_refund(request, refund) for refund in found]
    return any(moved)


def apply_refund(request: PaymentRequest, refund: RefundSummary) -> bool:
    """Stripe's word on one refund of the request: its row (made here if Stripe's dashboard
    made the refund), its state forward only, then the request's refunded amount from the
    charge when Stripe gave it. ``NotTheRequests`` if the refund gives back another payment."""
    if not _gives_back(request, refund):
        raise NotTheRequests(f"Refund {refund.id} is not of payment request {request.id}.")
    row = _row_for(request, refund)
    if refund.charge_amount_refunded is not None:  # first: the patient's notice tells it
        given_back = refund.status in GIVEN_BACK
        follow_refunded_amount(request, refund.charge_amount_refunded, given_back)
    return _advance(row, refund)


def _gives_back(request: PaymentRequest, refund: RefundSummary) -> bool:
    """Whether the refund is of the charge that paid the request, as Stripe says."""
    if request.payment_intent_id and refund.payment_intent == request.payment_intent_id:
        return True
    return bool(request.charge_id) and refund.charge == request.charge_id


def _row_for(request: PaymentRequest, refund: RefundSummary) -> PaymentRefund:
    row = db.session.scalar(select(PaymentRefund).filter_by(stripe_refund_id=refund.id))
    if row is not None:
        if row.payment_request_id != request.id:
            raise NotTheRequests(f"Refund {refund.id} is recorded for another payment.")
        return row
    if refund.refund_key and time.time() - refund.created < STORING_GRACE_SECONDS:
        raise RefundNotStoredYet(refund.id)
    return _recorded_from_stripe(request, refund)


def _recorded_from_stripe(request: PaymentRequest, refund: RefundSummary) -> PaymentRefund:
    """A row for a refund vcpay learns of from Stripe: made in the dashboard, or asked for
    in vcpay by a page whose answer was lost (its key, if no row has it, lets a second post
    of that form find it)."""
    key = refund.refund_key
    if key and (not REFUND_KEY.match(key) or refund_with_key(key) is not None):
        key = None
    row = PaymentRefund(
        payment_request=request,
        refund_key=key,
        stripe_refund_id=refund.id,
        amount=max(refund.amount, 1),
        reason=MADE_IN_STRIPE,
        state=RefundState.ASKING.value,
        requested_by=None,
        updated_at=utcnow(),
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:  # another worker recorded it a moment ago
        found = db.session.scalar(select(PaymentRefund).filter_by(stripe_refund_id=refund.id))
        if found is None:
            raise
        return found
    record_audit("payment.refund_recorded", request, refund=refund.id, amount=refund.amount)
    return row


def _advance(row: PaymentRefund, refund: RefundSummary) -> bool:
    """Compare and set: the row takes Stripe's state if that is further along; True if so."""
    try:
        state = RefundState(refund.status)
    except ValueError:
        return False
    for _attempt in range(len(PROGRESS)):
        if state == RefundState.ASKING or PROGRESS[state] <= PROGRESS[RefundState(row.state)]:
            return False
        values = {
            "state": state.value,
            "failure_reason": refund.failure_reason[:100],
            "updated_at": utcnow(),
        }
        moved = db.session.execute(
            update(PaymentRefund)
            .where(PaymentRefund.id == row.id, PaymentRefund.state == row.state)
            .values(values)
            .execution_options(synchronize_session=False)
        )
        if moved.rowcount == 1:
            for name, value in values.items():
                set_committed_value(row, name, value)
            _when_moved(row)
            return True
        db.session.refresh(row)
    return False


def _when_moved(row: PaymentRefund) -> None:
    if row.state == RefundState.SUCCEEDED:
        _tell_the_patient(row)
    elif row.state == RefundState.FAILED:
        _tell_the_admins(row)


def _tell_the_patient(row: PaymentRefund) -> None:
    """The refund notice, once per refund, in the language the patient paid in."""
    request = row.payment_request
    if not request.patient_email:
        return
    queue_email(
        f"refund:{row.stripe_refund_id}",
        request.patient_email,
        _l("Your refund from %(clinic)s", clinic=request.clinic.name),
        "refund_notice",
        locale=request.patient_locale or None,
        sender_name=request.clinic.name,
        request=request,
        refund=row,
    )


def _tell_the_admins(row: PaymentRefund) -> None:
    request = row.payment_request
    record_audit("payment.refund_failed", request, refund=row.stripe_refund_id, amount=row.amount)
    notify_clinic_admins(
        request.clinic,
        Notice.REFUND_FAILED,
        row.stripe_refund_id or str(row.id),
        _l("A refund failed at %(clinic)s", clinic=request.clinic.name),
        "refund_failed",
        request=request,
        refund=row,
        why=FAILURE_REASONS.get(row.failure_reason, _l("Stripe did not say why")),
        link=public_url_for("ledger.detail", payment_id=request.id),
    )
