"""Requesting payments in a call and moving them through their states.

Every transition is guarded by the current state and applied the same way whoever learns of
it first: a webhook, the reconciler, or the patient's confirmation page. Each writes a call
event in the same transaction, so both screens see it, and a payment is announced, emailed
and counted once. The guard is a compare-and-set in the database (``_move``), not a row
lock, which SQLite ignores: of two processes moving a request at once, one wins and the
other reads it again.
"""

import logging
import re
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from vcpay.audit.services import record_audit
from vcpay.calls.events import CallEventKind, record_event
from vcpay.calls.models import Audience, Call, Participant
from vcpay.calls.services import patients
from vcpay.client_payments.models import StripeLink
from vcpay.client_payments.stripe_link import live_link
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.inputs import TEXT_CONTROL_MESSAGE, has_control_character
from vcpay.integrations.stripe_errors import IdempotencyKeyInUse, StripeGatewayError
from vcpay.integrations.stripe_gateway import StripeGateway
from vcpay.integrations.stripe_values import CheckoutRequest, CheckoutSummary
from vcpay.mail.services import queue_email
from vcpay.payments.amounts import AmountInvalid, format_amount, parse_amount
from vcpay.payments.models import (
    OPEN_STATES,
    SETTLED_STATES,
    PaymentRequest,
    PaymentState,
)
from vcpay.payments.receipts import receipt_url
from vcpay.people.models import Clinic, User
from vcpay.public_urls import public_url_for

log = logging.getLogger(__name__)
DESCRIPTION_MAX = 120
REQUEST_KEY = re.compile(r"^[A-Za-z0-9_-]{16,40}$")
# Stripe accepts 30 minutes to 24 hours.
MINUTES_ALLOWED = (30, 24 * 60)
# How long a double click's second request waits for the first to store the request it is
# making (Stripe's own timeout is the bound).
OTHER_CLICK_WAITS = (0.1, 0.2, 0.4, 0.8, 1.5, 3.0, 4.0)


class StateMoved(Exception):
    """Another process moved the request after it was read here; it has been read again."""


class PaymentRefused(Exception):
    """The request was not made; ``field`` names the form field at fault, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


def why_payments_unavailable(clinic: Clinic) -> str | None:
    """Why Request Payment cannot be used in this clinic's calls, and who can fix it."""
    if not clinic.gateway_enabled:
        return _(
            "Payments are not switched on for %(clinic)s. An organisation admin can ask for "
            "the Payment Gateway under Client Payments.",
            clinic=clinic.name,
        )
    link = live_link(clinic)
    if link is None:
        return _(
            "%(clinic)s has no Stripe account linked yet. A clinic admin can link it with "
            "Go to Stripe under Client Payments.",
            clinic=clinic.name,
        )
    if not link.charges_enabled:
        return _(
            "Stripe has not enabled card payments on %(clinic)s's account yet. A clinic admin "
            "can see what Stripe needs under Client Payments.",
            clinic=clinic.name,
        )
    return None


def _description(text: str) -> str:
    if has_control_character(text or ""):
        raise PaymentRefused(str(TEXT_CONTROL_MESSAGE), "description")
    description = " ".join((text or "").split())
    if not description:
        raise PaymentRefused(
            _("Enter a description: the patient sees it and it is on the receipt."), "description"
        )
    if len(description) > DESCRIPTION_MAX:
        raise PaymentRefused(
            _("Keep the description to %(max)s characters or fewer.", max=DESCRIPTION_MAX),
            "description",
        )
    return description


def _expiry() -> datetime:
    low, high = MINUTES_ALLOWED
    minutes = min(max(current_app.config["PAYMENT_REQUEST_MINUTES"], low), high)
    return (utcnow() + timedelta(minutes=minutes)).replace(microsecond=0)


def requests_in_call(call: Call) -> list[PaymentRequest]:
    """The call's payment requests, newest first."""
    return list(
        db.session.scalars(
            select(PaymentRequest).filter_by(call_id=call.id).order_by(PaymentRequest.id.desc())
        )
    )


def request_in_call(call: Call, request_key: str) -> PaymentRequest | None:
    return db.session.scalar(
        select(PaymentRequest).filter_by(call_id=call.id, request_key=request_key)
    )


def existing_request(request_key: str) -> PaymentRequest | None:
    return db.session.scalar(select(PaymentRequest).filter_by(request_key=request_key))


@dataclass(frozen=True)
class Requested:
    request: PaymentRequest
    repeated: bool  # a second click: the first click's request


def request_payment(
    call: Call, clinician: User, amount_text: str, description_text: str, request_key: str,
    gateway: StripeGateway, payer_choice: str = "",
) -> Requested:  # fmt: skip
    """Make the Checkout Session on the clinic's account, then the request; commits."""
    if not REQUEST_KEY.match(request_key or ""):
        raise PaymentRefused(_("The form expired; please try again."))
    if (earlier := existing_request(request_key)) is not None:
        return _repeated(call, earlier)
    if not call.is_open:
        raise PaymentRefused(_("This call has ended."))
    if (reason := why_payments_unavailable(call.clinic)) is not None:
        raise PaymentRefused(reason)
    amount = _parse(amount_text)
    description = _description(description_text)
    payer = _payer(call, payer_choice)
    link = live_link(call.clinic)
    expires_at = _expiry()
    try:
        session = _create_session(
            call, link.account_id, amount, description, request_key, expires_at, gateway
        )
    except IdempotencyKeyInUse as error:
        # The other click of a double click is making this very request right now.
        if (earlier := _await_other_click(request_key)) is None:
            raise _not_created(error) from None
        return _repeated(call, earlier)
    request = PaymentRequest(
        request_key=request_key, call=call, clinic=call.clinic, requested_by=clinician,
        amount=amount, currency="aud", description=description, updated_at=utcnow(),
        stripe_account_id=link.account_id, checkout_session_id=session.id,
        checkout_url=session.url or "", expires_at=expires_at, payer=payer,
        patient_name=payer.display_name if payer else _patients(call),
    )  # fmt: skip
    db.session.add(request)
    try:
        db.session.flush()
    except IntegrityError:  # the other click of a double click got here first
        db.session.rollback()
        return Requested(existing_request(request_key), repeated=True)
    _announce(request, CallEventKind.PAYMENT_REQUESTED)
    record_audit("payment.requested", request, actor=clinician, amount=amount)
    db.session.commit()
    return Requested(request, repeated=False)


def _repeated(call: Call, earlier: PaymentRequest) -> Requested:
    if earlier.call_id != call.id:
        raise PaymentRefused(_("The form expired; please try again."))
    return Requested(earlier, repeated=True)


def _await_other_click(request_key: str) -> PaymentRequest | None:
    for wait in OTHER_CLICK_WAITS:
        time.sleep(wait)
        if (earlier := existing_request(request_key)) is not None:
            return earlier
    return None


ANYONE = "anyone"  # the form's choice when whoever is in the call may pay


def _payer(call: Call, choice: str) -> Participant | None:
    """Who is asked to pay: the patient chosen, or anyone (None). With one patient in the
    call and no choice made, that patient; with several, the clinician must choose."""
    in_call = patients(call)
    if choice == ANYONE:
        return None
    if not choice:
        if len(in_call) > 1:
            message = _("Choose who pays: more than one person is in the call.")
            raise PaymentRefused(message, "payer")
        return in_call[0] if in_call else None
    chosen = next((p for p in in_call if str(p.id) == choice), None)
    if chosen is None:
        raise PaymentRefused(_("Choose who pays from the people in this call."), "payer")
    return chosen


def _patients(call: Call) -> str:
    return ", ".join(p.display_name for p in patients(call))[:80]


def _parse(amount_text: str) -> int:
    try:
        return parse_amount(amount_text)
    except AmountInvalid as invalid:
        raise PaymentRefused(invalid.message, "amount") from None


def _create_session(call, account_id, amount, description, request_key, expires_at, gateway):
    token = call.guest_token
    done = public_url_for("payments.payment_done", token=token, request_key=request_key)
    order = CheckoutRequest(
        account_id=account_id,
        amount=amount,
        currency="aud",
        description=description,
        # Stripe puts the session id in place of the placeholder.
        success_url=f"{done}?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=public_url_for("payments.payment_left", token=token, request_key=request_key),
        expires_at=int(expires_at.timestamp()),
        idempotency_key=f"vcpay-payreq-{request_key}-checkout",
        metadata={
            "payment_request": request_key,
            "clinic_id": str(call.clinic_id),
            "call_id": str(call.id),
        },
    )
    try:
        return gateway.create_checkout_session(order)
    except IdempotencyKeyInUse:
        raise
    except StripeGatewayError as error:
        raise _not_created(error) from None


def _not_created(error: StripeGatewayError) -> PaymentRefused:
    return PaymentRefused(
        _("Stripe could not create the payment, so nothing was requested: %(why)s", why=error)
    )


def _announce(
    request: PaymentRequest, kind: CallEventKind, audience=Audience.EVERYONE, **extra
) -> None:
    record_event(
        request.call,
        kind,
        audience,
        request=request.request_key,
        state=request.state,
        amount=format_amount(request.amount, request.currency),
        description=request.description,
        **extra,
    )


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


def read_checkout(request: PaymentRequest, gateway: StripeGateway) -> CheckoutSummary:
    """The request's Checkout Session as Stripe has it now, read on the request's account."""
    return gateway.retrieve_checkout_session(request.stripe_account_id, request.checkout_session_id)


class NotTheRequests(Exception):
    """Stripe's answer shows that the object an event named is not the request's own."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def sync_with_stripe(
    request: PaymentRequest,
    gateway: StripeGateway,
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
    session = read_checkout(request, gateway)
    if failed_attempt is not None and session.payment_intent_id != failed_attempt:
        raise NotTheRequests(f"Not the PaymentIntent of payment request {request.id}.")
    if charge is not None and session.latest_charge_id != charge:
        raise NotTheRequests(f"Not the charge that paid payment request {request.id}.")
    # Another of the three may have applied this payment while Stripe answered: start from
    # the row as it is now; the compare-and-set in each move settles a race that remains.
    db.session.refresh(request)
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
        return record_refund(request, session.amount_refunded) or paid
    if session.delayed_payment_failed:
        return record_async_failure(request)
    if session.status == "complete" and request.state == PaymentState.REQUESTED:
        _move(request, PaymentState.PROCESSING)
        _announce(request, CallEventKind.PAYMENT_PROCESSING)
        return True
    if session.status == "expired" and request.is_open:
        _move(request, PaymentState.EXPIRED)
        _announce(request, CallEventKind.PAYMENT_EXPIRED)
        return True
    return False


def mark_paid(request: PaymentRequest, session: CheckoutSummary) -> bool:
    if request.state in SETTLED_STATES:
        return False
    _move(request, PaymentState.PAID)
    request.paid_at = utcnow()
    request.payment_intent_id = session.payment_intent_id
    request.patient_email = session.email[:254]
    request.receipt_number = session.receipt_number[:64]
    request.card_brand = session.card_brand[:20]
    request.card_last4 = session.card_last4[:4]
    request.last_decline = ""
    request.patient_name = request.patient_name or _patients(request.call)
    patient = request.patient_name or session.email or _("the patient")
    _announce(request, CallEventKind.PAYMENT_PAID, patient=patient)
    _queue_receipt(request)
    return True


def _queue_receipt(request: PaymentRequest) -> None:
    if not request.patient_email:
        return
    queue_email(
        f"receipt:{request.id}",
        request.patient_email,
        _l("Your receipt from %(clinic)s", clinic=request.clinic.name),
        "payment_receipt",
        locale=request.patient_locale or None,
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
    _announce(
        request, CallEventKind.PAYMENT_DECLINED, Audience.EVERYONE, message=request.last_decline
    )
    return True


def record_async_failure(request: PaymentRequest) -> bool:
    if request.state not in OPEN_STATES:
        return False
    _move(request, PaymentState.FAILED)
    _announce(request, CallEventKind.PAYMENT_FAILED)
    return True


def record_refund(request: PaymentRequest, amount_refunded: int) -> bool:
    """Refunds only grow, so an older event arriving late changes nothing."""
    if request.state not in SETTLED_STATES or amount_refunded <= request.amount_refunded:
        return False
    refunded = min(amount_refunded, request.amount)
    full = refunded >= request.amount
    state = PaymentState.REFUNDED if full else PaymentState.PARTIALLY_REFUNDED
    _move(request, state, amount_refunded=refunded)
    _announce(
        request,
        CallEventKind.PAYMENT_REFUNDED,
        Audience.STAFF,
        refunded=format_amount(request.amount_refunded, request.currency),
    )
    return True


def cancel_request(request: PaymentRequest, user: User, gateway: StripeGateway) -> bool:
    """Close the Checkout page first: if the patient paid meanwhile, it is paid, not cancelled."""
    if request.state != PaymentState.REQUESTED:
        return False
    session = gateway.expire_checkout_session(
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
        _announce(request, CallEventKind.PAYMENT_CANCELLED)
        return True
    return False


def cancel_requests_of_removed_link(link: StripeLink, gateway: StripeGateway) -> None:
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
        # Access may be gone already (disconnected in Stripe); cancel here regardless.
        with suppress(StripeGatewayError):
            gateway.expire_checkout_session(request.stripe_account_id, request.checkout_session_id)
        with suppress(StateMoved):  # paid a moment ago: it stays paid
            _move(request, PaymentState.CANCELLED)
            _announce(request, CallEventKind.PAYMENT_CANCELLED, reason="stripe_removed")


def reconcile(
    gateway: StripeGateway, quiet: timedelta, ask_again: timedelta, limit: int = 100
) -> int:
    """Ask Stripe about open requests past their expiry or ``quiet`` for a while (a missed
    webhook), each at most once per ``ask_again``; apply what it says. Returns how many changed."""
    now = utcnow()
    candidates = db.session.scalars(
        select(PaymentRequest)
        .where(
            PaymentRequest.state.in_([s.value for s in OPEN_STATES]),
            PaymentRequest.created_at < now - quiet,
            (PaymentRequest.reconciled_at.is_(None))
            | (PaymentRequest.reconciled_at < now - ask_again)
            | (PaymentRequest.expires_at < now),
        )
        # Least recently asked first: requests Stripe keeps refusing cannot take every place.
        .order_by(PaymentRequest.reconciled_at.nulls_first(), PaymentRequest.expires_at)
        .limit(limit)
    ).all()
    changed = 0
    for request in candidates:
        request_id = request.id
        try:
            changed += sync_with_stripe(request, gateway)
        except StripeGatewayError as error:
            db.session.rollback()
            log.warning("Could not reconcile payment request %s: %s", request_id, error)
            _note_asked(request_id, now)  # asked again after the re-check interval
            continue
        request.reconciled_at = now
        db.session.commit()
    return changed


def _note_asked(request_id: int, when: datetime) -> None:
    db.session.execute(
        update(PaymentRequest).where(PaymentRequest.id == request_id).values(reconciled_at=when)
    )
    db.session.commit()


def request_for_session(session_id: str) -> PaymentRequest | None:
    return db.session.scalar(select(PaymentRequest).filter_by(checkout_session_id=session_id))


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
