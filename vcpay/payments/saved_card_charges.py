"""Charging a saved card: the clinician's amount and description, charged off-session on the
account the card was saved on, during or after the call. These flush; the view, handler or
task that asked commits.

The request is stored first (its key is the form's, so a double click makes one), then Stripe
is asked with a key derived from it, so asking again (the reconciler, after Stripe did not
answer) replays the same PaymentIntent. Paid: the receipt is emailed as for any payment.
Declined: the request fails. Authentication required: it waits, and the patient is emailed a
signed link to a vcpay page that brings them to 3-D Secure; Stripe's answer for the card's
account decides, whether the patient's return or the webhook tells first.
"""

from datetime import timedelta

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vcpay.audit.services import record_audit
from vcpay.calls.events import CallEventKind
from vcpay.calls.models import Call
from vcpay.client_payments.models import LinkState, StripeLink
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.inputs import parse_id
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_card_values import OffSessionCharge
from vcpay.integrations.stripe_values import CheckoutSummary
from vcpay.mail.services import queue_email
from vcpay.payments import requesting, transitions
from vcpay.payments.amounts import format_amount
from vcpay.payments.models import PaymentRequest, PaymentState, SavedCard
from vcpay.people.models import User
from vcpay.public_urls import public_url_for

WAITING = "authentication_required"  # Stripe's code while the card needs its holder
SALT = "vcpay.saved-card-authentication"
LINK_LIFETIME = timedelta(days=7)


def card_in_call(call: Call, card_id: object) -> SavedCard | None:
    """One of the call's usable saved cards, by the id the form sent."""
    found = parse_id(card_id)
    card = db.session.get(SavedCard, found) if found is not None else None
    if card is None or card.call_id != call.id or not card.is_usable:
        return None
    return card


def _live_link(card: SavedCard) -> StripeLink | None:
    """The clinic's live link to the account the card was saved on, if it still is."""
    return db.session.scalar(
        select(StripeLink).where(
            StripeLink.clinic_id == card.clinic_id,
            StripeLink.account_id == card.account_id,
            StripeLink.state == LinkState.LINKED.value,
        )
    )


def charge(
    call: Call,
    clinician: User,
    card: SavedCard,
    amount_text: str,
    description_text: str,
    request_key: str,
    stripe_api: StripeApi,
) -> PaymentRequest:
    """Charge the card; the request as Stripe left it (paid, failed or waiting)."""
    if not requesting.REQUEST_KEY.match(request_key or ""):
        raise requesting.PaymentRefused(_("The form expired; please try again."))
    if (earlier := requesting.existing_request(request_key)) is not None:
        if earlier.call_id != call.id:
            raise requesting.PaymentRefused(_("The form expired; please try again."))
        return earlier
    if not call.clinic.gateway_enabled:
        raise requesting.PaymentRefused(_("Payments are not switched on for this clinic."))
    link = _live_link(card)
    if link is None or not link.charges_enabled:
        raise requesting.PaymentRefused(
            _("The Stripe account this card was saved on is no longer linked to the clinic.")
        )
    amount = requesting.checked_amount(amount_text)
    description = requesting.checked_description(description_text)
    request = PaymentRequest(
        request_key=request_key,
        call=call,
        clinic=call.clinic,
        requested_by=clinician,
        amount=amount,
        currency="aud",
        description=description,
        updated_at=utcnow(),
        stripe_account_id=card.account_id,
        expires_at=utcnow() + LINK_LIFETIME,
        payer=card.participant,
        patient_name=card.participant.display_name,
        patient_email=card.email,
        patient_locale=card.participant.locale or "",
        off_session=True,
        saved_card_id=card.id,
    )
    try:
        with db.session.begin_nested():
            db.session.add(request)
    except IntegrityError:  # the other click of a double click stored it first
        return requesting.existing_request(request_key)
    transitions.announce(request, CallEventKind.PAYMENT_REQUESTED)
    record_audit("payment.saved_card_charged", request, actor=clinician, amount=amount)
    db.session.flush()
    ask_stripe(request, stripe_api)
    return request


def ask_stripe(request: PaymentRequest, stripe_api: StripeApi) -> bool:
    """Make (or replay) the charge, or read it again; apply Stripe's answer. True if moved."""
    if request.payment_intent_id is None:
        card = db.session.get(SavedCard, request.saved_card_id)
        if card is None or card.payment_method_id is None:
            return False
        answer = stripe_api.charge_saved_card(
            card.account_id,
            card.customer_id,
            card.payment_method_id,
            request.amount,
            request.description,
            f"vcpay-payreq-{request.request_key}-charge",
            {"payment_request": request.request_key, "call_id": str(request.call_id)},
        )
    else:
        answer = stripe_api.read_saved_card_charge(
            request.stripe_account_id, request.payment_intent_id
        )
    return apply(request, answer)


def apply(request: PaymentRequest, answer: OffSessionCharge) -> bool:
    """Bring the request in line with Stripe's PaymentIntent; True if it moved."""
    if request.payment_intent_id not in (None, answer.payment_intent_id):
        raise transitions.NotTheRequests(f"Not the PaymentIntent of payment request {request.id}.")
    for _attempt in range(len(PaymentState)):
        try:
            return _apply(request, answer)
        except transitions.StateMoved:
            continue
    raise transitions.StateMoved(request.id)


def _apply(request: PaymentRequest, answer: OffSessionCharge) -> bool:
    if answer.succeeded:
        return transitions.mark_paid(request, _as_summary(request, answer))
    if request.state != PaymentState.REQUESTED:
        return False
    if answer.status in ("requires_action", "processing") or answer.refusal == WAITING:
        if request.payment_intent_id is None:
            transitions.move(request, PaymentState.REQUESTED, **_waiting(answer))
            _ask_patient(request)
            return True
        if request.expires_at <= utcnow():  # the emailed link has stopped working
            transitions.move(request, PaymentState.EXPIRED)
            transitions.announce(request, CallEventKind.PAYMENT_EXPIRED)
            return True
        return False
    if answer.status in ("requires_payment_method", "canceled"):
        message = answer.message or _("The card was declined.")
        transitions.move(
            request,
            PaymentState.FAILED,
            payment_intent_id=answer.payment_intent_id,
            last_decline=message[:300],
        )
        transitions.announce(request, CallEventKind.PAYMENT_FAILED, message=request.last_decline)
        return True
    return False


def _waiting(answer: OffSessionCharge) -> dict:
    message = _("The card needs the patient to confirm this payment with their bank.")
    return {"payment_intent_id": answer.payment_intent_id, "last_decline": message}


def _as_summary(request: PaymentRequest, answer: OffSessionCharge) -> CheckoutSummary:
    """The charge in the shape a paid request is recorded from (it has no Checkout page)."""
    return CheckoutSummary(
        id="",
        url=None,
        status="complete",
        payment_status="paid",
        amount_total=answer.amount,
        expires_at=0,
        payment_intent_id=answer.payment_intent_id,
        email=request.patient_email,
        card_brand=answer.card_brand,
        card_last4=answer.card_last4,
        receipt_number=answer.receipt_number,
        latest_charge_id=answer.charge_id,
    )


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def authentication_url(request: PaymentRequest) -> str:
    signed = _serializer().dumps(request.request_key)
    return public_url_for("saved_cards.authenticate", signed=signed)


def request_for_link(signed: str) -> PaymentRequest | None:
    """The off-session request an emailed link names (signed, for a week), or None."""
    try:
        key = _serializer().loads(signed, max_age=int(LINK_LIFETIME.total_seconds()))
    except BadSignature:  # SignatureExpired included
        return None
    found = requesting.existing_request(str(key))
    return found if found is not None and found.off_session else None


def _ask_patient(request: PaymentRequest) -> None:
    if not request.patient_email:
        return
    queue_email(
        f"authenticate:{request.id}",
        request.patient_email,
        _l("Please confirm your payment to %(clinic)s", clinic=request.clinic.name),
        "saved_card_authentication",
        locale=request.patient_locale or None,
        sender_name=request.clinic.name,
        request=request,
        amount=format_amount(request.amount, request.currency),
        link=authentication_url(request),
    )


def confirm_with_patient(request: PaymentRequest, return_url: str, stripe_api: StripeApi):
    """The patient is back: confirm with them present; where to send them (3-D Secure), or
    None when Stripe settled it at once (then applied here)."""
    card = db.session.get(SavedCard, request.saved_card_id)
    if card is None or card.payment_method_id is None or request.payment_intent_id is None:
        return None
    answer = stripe_api.confirm_saved_card_charge(
        request.stripe_account_id, request.payment_intent_id, card.payment_method_id, return_url
    )
    if answer.status == "requires_action" and answer.redirect_url:
        return answer.redirect_url
    apply(request, answer)
    return None
