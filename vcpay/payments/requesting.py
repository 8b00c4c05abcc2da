"""Making payment requests in a call: checks, the Checkout Session, a double click made once.

What becomes of a request afterwards is in ``transitions``; the reconciler is in ``reconciler``.
Longer than most modules because every check a request passes before Stripe is asked sits
here, in the order they run.
"""

import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vcpay.audit.services import record_audit
from vcpay.calls.events import CallEventKind
from vcpay.calls.models import Call, Participant
from vcpay.calls.services import patients
from vcpay.client_payments.stripe_link import link_for
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.i18n import checkout_locale
from vcpay.inputs import TEXT_CONTROL_MESSAGE, has_control_character
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import IdempotencyKeyInUse, StripeApiError
from vcpay.integrations.stripe_values import CheckoutRequest
from vcpay.payments.amounts import AmountInvalid, format_amount, parse_amount
from vcpay.payments.models import OPEN_STATES, PaymentRequest
from vcpay.payments.transitions import announce, patient_names
from vcpay.people.models import Clinic, User
from vcpay.public_urls import public_url_for

DESCRIPTION_MAX = 120
REQUEST_KEY = re.compile(r"^[A-Za-z0-9_-]{16,40}$")
# Stripe accepts 30 minutes to 24 hours.
MINUTES_ALLOWED = (30, 24 * 60)
# How long a double click's second request waits for the first to store the request it is
# making (Stripe's own timeout is the bound).
OTHER_CLICK_WAITS = (0.1, 0.2, 0.4, 0.8, 1.5, 3.0, 4.0)


class PaymentRefused(Exception):
    """The request was not made; ``field`` names the form field at fault, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class RepeatUnconfirmed(PaymentRefused):
    """The same amount and description are still open in this call as ``open_request``: a
    second payment is made only when the clinician confirms it by naming that request."""

    def __init__(self, open_request: PaymentRequest):
        super().__init__(
            _(
                "A request for %(amount)s '%(description)s' is still open in this call. "
                "Request it again?",
                amount=format_amount(open_request.amount, open_request.currency),
                description=open_request.description,
            ),
            "confirm_repeat",
        )
        self.open_request = open_request.request_key


def why_payments_unavailable(clinic: Clinic, clinician: User | None = None) -> str | None:
    """Why Request Payment cannot be used in this clinic's calls (by ``clinician``, whose
    payments may be routed to an account of their own), and who can fix it."""
    if not clinic.gateway_enabled:
        return _(
            "Payments are not switched on for %(clinic)s. An organisation admin can ask for "
            "the Payment Gateway under Client Payments.",
            clinic=clinic.name,
        )
    link = link_for(clinic, clinician)
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


def checked_description(text: str) -> str:
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


def expiry() -> datetime:
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
class Charge:
    """What the patient is asked for, once the clinician's entries have been checked, and of
    whom: the payer (None: anyone in the call), and whether it is the call's fee before
    joining (``pay_first``: its patient comes back to the pay-first pages)."""

    amount: int  # cents
    description: str
    request_key: str
    expires_at: datetime
    payer: Participant | None = None
    pay_first: bool = False


@dataclass(frozen=True)
class Requested:
    request: PaymentRequest
    repeated: bool  # a second click: the first click's request


@dataclass(frozen=True)
class PaymentAsked:
    """What the clinician put into Request Payment, as typed: checked by ``request_payment``."""

    amount: str
    description: str
    request_key: str
    payer: str = ""  # a participant's id, ``ANYONE``, or empty for the patients in the call
    # The key of the open request with the same amount and description that the clinician
    # has seen and still wants to ask again (see ``RepeatUnconfirmed``).
    confirm_repeat: str = ""


def request_payment(
    call: Call, clinician: User, asked: PaymentAsked, stripe_api: StripeApi
) -> Requested:
    """Make the Checkout Session on the clinic's account, then the request; the caller commits.
    Of a double click's two posts, the one whose request is flushed second rolls back and
    answers with the other's: nothing else is in its transaction yet."""
    if not REQUEST_KEY.match(asked.request_key or ""):
        raise PaymentRefused(_("The form expired; please try again."))
    if (earlier := existing_request(asked.request_key)) is not None:
        return _repeated(call, earlier)
    if not call.is_open:
        raise PaymentRefused(_("This call has ended."))
    # The call's clinician's account (``link_for``), whoever in the call asks.
    if (reason := why_payments_unavailable(call.clinic, call.clinician)) is not None:
        raise PaymentRefused(reason)
    amount = checked_amount(asked.amount)
    description = checked_description(asked.description)
    payer = _payer(call, asked.payer)
    twin = open_twin(call, amount, description)
    if twin is not None and twin.request_key == asked.request_key:
        # The other click of a double click stored this very request since the look-up above.
        return Requested(twin, repeated=True)
    _refuse_unconfirmed_repeat(twin, asked.confirm_repeat)
    charge = Charge(amount, description, asked.request_key, expiry(), payer)
    return make_request(call, clinician, charge, stripe_api)


def make_request(
    call: Call, clinician: User | None, charge: Charge, stripe_api: StripeApi
) -> Requested:
    """The Checkout Session on the account the call's clinician is paid into (``link_for``),
    then the request, once the charge has been checked: a clinician's request, or a payment
    of the call's fee before joining."""
    link = link_for(call.clinic, call.clinician)
    payer = charge.payer
    try:
        session = _create_session(call, link.account_id, charge, stripe_api)
    except IdempotencyKeyInUse as error:
        # The other click of a double click is making this very request right now.
        if (earlier := _await_other_click(charge.request_key)) is None:
            raise not_created(error) from None
        return _repeated(call, earlier)
    request = PaymentRequest(
        request_key=charge.request_key,
        call=call,
        clinic=call.clinic,
        requested_by=clinician,
        amount=charge.amount,
        currency="aud",
        description=charge.description,
        updated_at=utcnow(),
        stripe_account_id=link.account_id,
        checkout_session_id=session.id,
        checkout_url=session.url or "",
        expires_at=charge.expires_at,
        payer=payer,
        patient_name=payer.display_name if payer else patient_names(call),
        pay_first=charge.pay_first,
    )
    db.session.add(request)
    try:
        db.session.flush()
    except IntegrityError:  # the other click of a double click got here first
        db.session.rollback()
        return Requested(existing_request(charge.request_key), repeated=True)
    announce(request, CallEventKind.PAYMENT_REQUESTED)
    record_audit("payment.requested", request, actor=clinician, amount=charge.amount)
    db.session.flush()
    return Requested(request, repeated=False)


def _repeated(call: Call, earlier: PaymentRequest) -> Requested:
    if earlier.call_id != call.id:
        raise PaymentRefused(_("The form expired; please try again."))
    return Requested(earlier, repeated=True)


def open_twin(call: Call, amount: int, description: str) -> PaymentRequest | None:
    """The newest request still open in ``call`` for the same amount and description (in
    any letter case): asking for it again may charge the patient twice."""
    same_amount = db.session.scalars(
        select(PaymentRequest)
        .where(
            PaymentRequest.call_id == call.id,
            PaymentRequest.amount == amount,
            PaymentRequest.state.in_([state.value for state in OPEN_STATES]),
        )
        .order_by(PaymentRequest.id.desc())
    )
    wanted = description.casefold()
    return next((r for r in same_amount if r.description.casefold() == wanted), None)


def _refuse_unconfirmed_repeat(twin: PaymentRequest | None, confirmed: str) -> None:
    """A new form for what is still open in the call (``twin``) needs the clinician's word."""
    if twin is not None and twin.request_key != confirmed:
        raise RepeatUnconfirmed(twin)


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


def checked_amount(amount_text: str) -> int:
    try:
        return parse_amount(amount_text)
    except AmountInvalid as invalid:
        raise PaymentRefused(invalid.message, "amount") from None


def _create_session(call: Call, account_id: str, charge: Charge, stripe_api: StripeApi):
    token = call.guest_token
    request_key = charge.request_key
    # A fee before joining brings the patient back to the pay-first pages.
    done_page, left_page = (
        ("fees.fee_done", "fees.fee_left")
        if charge.pay_first
        else ("payments.payment_done", "payments.payment_left")
    )
    done = public_url_for(done_page, token=token, request_key=request_key)
    order = CheckoutRequest(
        account_id=account_id,
        amount=charge.amount,
        currency="aud",
        description=charge.description,
        # Stripe puts the session id in place of the placeholder.
        success_url=f"{done}?session_id={{CHECKOUT_SESSION_ID}}",
        cancel_url=public_url_for(left_page, token=token, request_key=request_key),
        expires_at=int(charge.expires_at.timestamp()),
        idempotency_key=f"vcpay-payreq-{request_key}-checkout",
        locale=checkout_locale(_readers(call, charge.payer)),
        metadata={
            "payment_request": request_key,
            "clinic_id": str(call.clinic_id),
            "call_id": str(call.id),
        },
    )
    try:
        return stripe_api.create_checkout_session(order)
    except IdempotencyKeyInUse:
        raise
    except StripeApiError as error:
        raise not_created(error) from None


def _readers(call: Call, payer: Participant | None) -> set[str]:
    """The languages of whoever may pay: the payer asked, or every patient in the call."""
    return {p.locale for p in ([payer] if payer else patients(call))}


def not_created(error: StripeApiError) -> PaymentRefused:
    return PaymentRefused(
        _("Stripe could not create the payment, so nothing was requested: %(why)s", why=error.words)
    )
