"""Requesting payments in a call and moving them through their states.

Every transition is guarded by the current state and applied the same way whoever learns of
it first: a webhook, the reconciler, or the patient's confirmation page. Each writes a call
event in the same transaction, so both screens see it, and a payment is announced, emailed
and counted once. The guard is a compare-and-set in the database (``_move``), not a row
lock, which SQLite ignores: of two processes moving a request at once, one wins and the
other reads it again. Longer than most modules because every move of a request's state is
here, beside the one guard they share.
"""

import logging
from contextlib import suppress

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from vcpay.audit.services import record_audit
from vcpay.calls.events import CallEventKind, record_event, record_event_in
from vcpay.calls.models import Audience, Call, Participant, ParticipantRole
from vcpay.calls.services import patients
from vcpay.client_payments.models import StripeLink
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import StripeApiError
from vcpay.integrations.stripe_values import CheckoutSummary
from vcpay.mail.services import queue_email
from vcpay.payments.amounts import format_amount
from vcpay.payments.models import (
    OPEN_STATES,
    SETTLED_STATES,
    PaymentRequest,
    PaymentState,
)
from vcpay.payments.problems import payment_expired, payment_failed
from vcpay.payments.receipts import receipt_url
from vcpay.people.models import User

log = logging.getLogger(__name__)


class StateMoved(Exception):
    """Another process moved the request after it was read here; it has been read again."""


def announce(
    request: PaymentRequest, kind: CallEventKind, audience=Audience.EVERYONE, **extra
) -> None:
    data = {
        "request": request.request_key,
        "state": request.state,
        "amount": format_amount(request.amount, request.currency),
        "description": request.description,
        **extra,
    }
    if request.call_id is None:  # a request made just now, with its call not yet flushed
        record_event(request.call, kind, audience, **data)
    else:  # by id: announcing a payment needs no read of its call
        record_event_in(request.call_id, kind, audience, **data)


def patient_names(call: Call) -> str:
    return ", ".join(p.display_name for p in patients(call))[:80]


def patient_names_in(call_id: int) -> str:
    """``patient_names`` of a call known by id, read in one query (not the call, then all of
    its participants)."""
    names = db.session.scalars(
        select(Participant.display_name)
        .where(Participant.call_id == call_id, Participant.role == ParticipantRole.PATIENT.value)
        .order_by(Participant.id)
    )
    return ", ".join(names)[:80]


def _move(request: PaymentRequest, state: PaymentState, **values) -> None:
    """Compare and set: change the request only if it is still as it was read here; else
    read it again and raise ``StateMoved``."""
    values = {"state": state.value, "updated_at": utcnow(), **values}
    moved = db.session.execute(
        update(PaymentRequest)
        .where(
            PaymentRequest.id == request.id,
            PaymentRequest.state == request.state,
            PaymentRequest.amount_refunded == request.amount_refunded,
        )
        .values(values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        db.session.refresh(request)
        raise StateMoved(request.id)
    for name, value in values.items():
        set_committed_value(request, name, value)


def move(request: PaymentRequest, state: PaymentState, **values) -> None:
    """The same guarded move, for the charges to saved cards (``saved_card_charges``)."""
    _move(request, state, **values)


def read_checkout(request: PaymentRequest, stripe_api: StripeApi) -> CheckoutSummary:
    """The request's Checkout Session as Stripe has it now, read on the request's account."""
    return stripe_api.retrieve_checkout_session(
        request.stripe_account_id, request.checkout_session_id
    )


class NotTheRequests(Exception):
    """Stripe's answer shows that the object an event named is not the request's own."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def sync_with_stripe(
    request: PaymentRequest,
    stripe_api: StripeApi,
    failed_attempt: str | None = None,
    charge: str | None = None,
) -> bool:
    """Ask Stripe about the request and apply what it says: the one way the patient's
    confirmation page, a webhook and the reconciler learn of a payment. True if it moved.

    An event about a declined attempt (``failed_attempt``, its PaymentIntent) or a refund
    (``charge``) counts only if Stripe's answer shows that object to be the request's own;
    else ``NotTheRequests``. A declined attempt's reason, as Stripe gives it, is then shown
    to both sides.
    """
    session = read_checkout(request, stripe_api)
    if failed_attempt is not None and session.payment_intent_id != failed_attempt:
        raise NotTheRequests(f"Not the PaymentIntent of payment request {request.id}.")
    if charge is not None and session.latest_charge_id != charge:
        raise NotTheRequests(f"Not the charge that paid payment request {request.id}.")
    # Another of the three may have applied this payment while Stripe answered. The row is
    # not read again for that: each move is a compare-and-set against the row as read, and one
    # that finds it moved reads it again and retries (apply_checkout), so the rare race costs
    # a read and the usual case none.
    moved = apply_checkout(request, session)
    if failed_attempt is not None:
        moved = record_decline(request, session.decline_message) or moved
    return moved


def apply_checkout(request: PaymentRequest, session: CheckoutSummary) -> bool:
    """Bring the request in line with what Stripe says of its session; True if it moved."""
    if session.id != request.checkout_session_id:
        raise ValueError(f"{session.id} is not the Checkout Session of request {request.id}")
    # Each retry follows a move by another process, and requests only move forward.
    for _attempt in range(len(PaymentState)):
        try:
            return _apply_checkout(request, session)
        except StateMoved:
            continue
    raise StateMoved(request.id)


def _apply_checkout(request: PaymentRequest, session: CheckoutSummary) -> bool:
    if session.is_paid:
        paid = mark_paid(request, session)
        learn_charge(request, session)
        return record_refund(request, session.amount_refunded) or paid
    if session.delayed_payment_failed:
        return record_async_failure(request)
    if session.status == "complete" and request.state == PaymentState.REQUESTED:
        _move(request, PaymentState.PROCESSING)
        announce(request, CallEventKind.PAYMENT_PROCESSING)
        return True
    if session.status == "expired" and request.is_open:
        _move(request, PaymentState.EXPIRED)
        announce(request, CallEventKind.PAYMENT_EXPIRED)
        payment_expired(request)
        return True
    return False


def mark_paid(request: PaymentRequest, session: CheckoutSummary) -> bool:
    if request.state in SETTLED_STATES:
        return False
    # The payment's details go in the guarded UPDATE that moves it: one statement, where
    # setting them afterwards cost a second UPDATE at the next flush.
    _move(request, PaymentState.PAID, **_paid_values(request, session))
    patient = request.patient_name or session.email or _("the patient")
    announce(request, CallEventKind.PAYMENT_PAID, patient=patient)
    _queue_receipt(request)
    return True


def _paid_values(request: PaymentRequest, session: CheckoutSummary) -> dict:
    values = {
        "paid_at": utcnow(),
        "payment_intent_id": session.payment_intent_id,
        "charge_id": session.latest_charge_id,
        "patient_email": session.email[:254],
        "receipt_number": session.receipt_number[:64],
        "card_brand": session.card_brand[:20],
        "card_last4": session.card_last4[:4],
        "last_decline": "",
        "patient_name": request.patient_name or patient_names_in(request.call_id),
    }
    if request.stripe_fee is None and session.stripe_fee is not None:
        values["stripe_fee"] = session.stripe_fee  # what learn_charge would set next
    return values


def learn_charge(request: PaymentRequest, session: CheckoutSummary) -> None:
    """Keep the charge that paid the request and Stripe's fee for it, once Stripe says them:
    refunds and payouts name the charge. The fee may come later than the payment (its
    balance transaction is made when the money moves), so a later read fills it in."""
    if request.charge_id is None and session.latest_charge_id:
        request.charge_id = session.latest_charge_id
    if request.stripe_fee is None and session.stripe_fee is not None:
        request.stripe_fee = session.stripe_fee


def _queue_receipt(request: PaymentRequest) -> None:
    if not request.patient_email:
        return
    queue_email(
        f"receipt:{request.id}",
        request.patient_email,
        _l("Your receipt from %(clinic)s", clinic=request.clinic.name),
        "payment_receipt",
        locale=request.patient_locale or None,
        sender_name=request.clinic.name,  # the patient paid the clinic, not vcpay
        request=request,
        amount=format_amount(request.amount, request.currency),
        receipt_url=receipt_url(request),  # its own link: the call's link stops working
    )


def record_decline(request: PaymentRequest, message: str) -> bool:
    """A declined card: the request stays open; both sides are told, the patient can retry.
    ``message`` is Stripe's reason, read from Stripe; none means no attempt is refused now."""
    if request.state != PaymentState.REQUESTED or not message:
        return False
    try:
        _move(request, PaymentState.REQUESTED, last_decline=message[:300])
    except StateMoved:
        return False  # paid or closed meanwhile: the decline no longer matters
    announce(
        request, CallEventKind.PAYMENT_DECLINED, Audience.EVERYONE, message=request.last_decline
    )
    return True


def record_async_failure(request: PaymentRequest) -> bool:
    if request.state not in OPEN_STATES:
        return False
    _move(request, PaymentState.FAILED)
    announce(request, CallEventKind.PAYMENT_FAILED)
    payment_failed(request)
    return True


def record_refund(request: PaymentRequest, amount_refunded: int) -> bool:
    """Refunds only grow, so an older event arriving late changes nothing."""
    if request.state not in SETTLED_STATES or amount_refunded <= request.amount_refunded:
        return False
    refunded = min(amount_refunded, request.amount)
    full = refunded >= request.amount
    state = PaymentState.REFUNDED if full else PaymentState.PARTIALLY_REFUNDED
    _move(request, state, amount_refunded=refunded)
    announce(
        request,
        CallEventKind.PAYMENT_REFUNDED,
        Audience.STAFF,
        refunded=format_amount(request.amount_refunded, request.currency),
    )
    return True


def _refund_given_back(request: PaymentRequest, amount_refunded: int) -> bool:
    """A refund failed or was cancelled: Stripe put its money back in the clinic's balance
    and counts it unrefunded again, so the request follows its charge down."""
    if request.state not in SETTLED_STATES or amount_refunded >= request.amount_refunded:
        return False
    refunded = max(amount_refunded, 0)
    state = PaymentState.PARTIALLY_REFUNDED if refunded else PaymentState.PAID
    _move(request, state, amount_refunded=refunded)
    announce(
        request,
        CallEventKind.PAYMENT_REFUNDED,
        Audience.STAFF,
        refunded=format_amount(request.amount_refunded, request.currency),
    )
    return True


def follow_refunded_amount(
    request: PaymentRequest, amount_refunded: int, given_back: bool = False
) -> bool:
    """Bring the request in line with what Stripe just said its charge has had refunded: up
    as refunds are made; down only when Stripe gave a failed refund back (``given_back``),
    since otherwise a lower figure is an older answer. True if it moved."""
    for _attempt in range(len(PaymentState)):
        try:
            if given_back and amount_refunded < request.amount_refunded:
                return _refund_given_back(request, amount_refunded)
            return record_refund(request, amount_refunded)
        except StateMoved:
            continue  # read again: apply Stripe's figure to the row as it is now
    raise StateMoved(request.id)


def cancel_request(request: PaymentRequest, user: User, stripe_api: StripeApi) -> bool:
    """Close the Checkout page first: if the patient paid meanwhile, it is paid, not cancelled."""
    if request.state != PaymentState.REQUESTED:
        return False
    if request.checkout_session_id is None:  # a saved card's charge waiting for its holder
        return _cancelled(request, user)
    session = stripe_api.expire_checkout_session(
        request.stripe_account_id, request.checkout_session_id
    )
    if session.status != "expired":
        return apply_checkout(request, session)
    return _cancelled(request, user)


def _cancelled(request: PaymentRequest, user: User) -> bool:
    """Stripe has closed the Checkout page at the clinician's word: record the cancel."""
    for _attempt in range(2):
        try:
            _move(request, PaymentState.CANCELLED)
        except StateMoved:
            # Word of this very expiry (Stripe's event, or the patient's page asking Stripe)
            # may have got here first: it is still the clinician's cancel.
            if request.state != PaymentState.EXPIRED:
                return False  # cancelled a moment ago by another click
            continue
        record_audit("payment.cancelled", request, actor=user, amount=request.amount)
        announce(request, CallEventKind.PAYMENT_CANCELLED)
        return True
    return False


def cancel_requests_of_removed_link(link: StripeLink, stripe_api: StripeApi) -> None:
    """Nobody can pay a clinic whose Stripe account is gone: cancel what is still open. Run
    as the link is removed (the factory wires it: vcpay.client_payments.stripe_link)."""
    open_requests = db.session.scalars(
        select(PaymentRequest).where(
            PaymentRequest.clinic_id == link.clinic_id,
            PaymentRequest.stripe_account_id == link.account_id,
            PaymentRequest.state == PaymentState.REQUESTED.value,
        )
    ).all()
    for request in open_requests:
        try:
            session = (
                stripe_api.expire_checkout_session(
                    request.stripe_account_id, request.checkout_session_id
                )
                if request.checkout_session_id is not None
                else None  # a saved card's charge: no page to close
            )
        except StripeApiError:
            session = None  # access is gone already (disconnected in Stripe): cancel here
        if session is not None and session.status != "expired":
            # Paid a moment before the removal: the payment is recorded now, since word of it
            # from Stripe, once the account is disconnected, is ignored.
            apply_checkout(request, session)
            continue
        with suppress(StateMoved):  # paid a moment ago: it stays paid
            _move(request, PaymentState.CANCELLED)
            announce(request, CallEventKind.PAYMENT_CANCELLED, reason="stripe_removed")


def request_for_session(session_id: str) -> PaymentRequest | None:
    # With its clinic, which a payment's receipt names: one query rather than two.
    return db.session.scalar(
        select(PaymentRequest)
        .options(joinedload(PaymentRequest.clinic))
        .filter_by(checkout_session_id=session_id)
    )


def request_for_payment_intent(
    payment_intent_id: str | None, request_key: str | None
) -> PaymentRequest | None:
    """The request paid through this PaymentIntent, else the one the metadata names (a hint
    until the payment is recorded: the caller checks the account and the session)."""
    if payment_intent_id:
        found = db.session.scalar(
            select(PaymentRequest).filter_by(payment_intent_id=payment_intent_id)
        )
        if found is not None:
            return found
    if not request_key:
        return None
    return db.session.scalar(select(PaymentRequest).filter_by(request_key=request_key))
