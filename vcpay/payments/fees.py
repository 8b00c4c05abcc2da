"""A fee before joining: set when a call is started, paid by each patient on the pay-first
page before they see the call, or waived for them by the clinician. These flush; the view
that asked commits.

Each payment of the fee is an ordinary payment request of the call (``pay_first``), made by
``requesting.make_request`` on the clinic's account, so it is paid, expires, is refunded and
listed like any other.
"""

import enum
import hashlib
from collections.abc import Mapping

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vcpay.audit.services import record_audit
from vcpay.calls.apps import CallNotPrepared
from vcpay.calls.events import CallEventKind, record_event
from vcpay.calls.models import Call, Participant, ParticipantRole
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.payments import requesting, transitions
from vcpay.payments.amounts import format_amount
from vcpay.payments.models import CallFee, FeeWaiver, PaymentRequest, PaymentState
from vcpay.people.models import Clinic, User

AMOUNT_FIELD, DESCRIPTION_FIELD = "fee_amount", "fee_description"


class FeeStatus(enum.StrEnum):
    DUE = "due"
    PROCESSING = "processing"  # paid with a method that settles later
    PAID = "paid"
    WAIVED = "waived"


def fee_of(call: Call) -> CallFee | None:
    return db.session.scalar(select(CallFee).filter_by(call_id=call.id))


def start_fields_context(clinic: Clinic, user: User) -> dict | None:
    """The fee's fields on the form that starts a call, where the clinic can take payments."""
    if requesting.why_payments_unavailable(clinic, user) is not None:  # their own account
        return None
    return {"amount_field": AMOUNT_FIELD, "description_field": DESCRIPTION_FIELD}


def set_fee(call: Call, clinician: User, sent: Mapping[str, str]) -> CallFee | None:
    """The fee entered on the form that started ``call``, checked as Request Payment checks
    an amount and a description; none when both were left empty."""
    amount_text = str(sent.get(AMOUNT_FIELD, "") or "")
    description_text = str(sent.get(DESCRIPTION_FIELD, "") or "")
    if not amount_text.strip() and not description_text.strip():
        return None
    try:
        if (reason := requesting.why_payments_unavailable(call.clinic, call.clinician)) is not None:
            raise requesting.PaymentRefused(reason)
        amount = requesting.checked_amount(amount_text)
        description = requesting.checked_description(description_text)
    except requesting.PaymentRefused as refused:
        field = {"amount": AMOUNT_FIELD, "description": DESCRIPTION_FIELD}.get(refused.field or "")
        message = _("No call was started: %(why)s", why=refused.message)
        raise CallNotPrepared(message, field) from None
    fee = CallFee(call=call, amount=amount, currency="aud", description=description)
    fee.set_by = clinician
    db.session.add(fee)
    db.session.flush()
    record_audit("payment.fee_set", fee, actor=clinician, amount=amount)
    return fee


def fee_requests(call: Call) -> list[PaymentRequest]:
    """The payments of the call's fee, oldest first."""
    query = select(PaymentRequest).filter_by(call_id=call.id, pay_first=True)
    return list(db.session.scalars(query.order_by(PaymentRequest.id)))


def _theirs(requests: list[PaymentRequest], patient: Participant) -> list[PaymentRequest]:
    """The fee's payments asked of this person (or of one the clinician recognised as them)."""
    return [r for r in requests if r.payer is not None and r.payable_by(patient)]


def _waived(call: Call, patient: Participant) -> bool:
    same_person = [p.id for p in call.participants if p.person_id == patient.person_id]
    query = select(FeeWaiver.id).where(FeeWaiver.participant_id.in_(same_person))
    return db.session.scalar(query.limit(1)) is not None


def status_of(call: Call, patient: Participant, requests: list | None = None) -> FeeStatus:
    requests = fee_requests(call) if requests is None else requests
    theirs = _theirs(requests, patient)
    if any(r.is_settled for r in theirs):
        return FeeStatus.PAID
    if _waived(call, patient):
        return FeeStatus.WAIVED
    if any(r.state == PaymentState.PROCESSING for r in theirs):
        return FeeStatus.PROCESSING
    return FeeStatus.DUE


def patient_gate(call: Call, patient: Participant) -> str | None:
    """The pay-first page, for a patient who has neither paid the call's fee nor had it
    waived."""
    if patient.role != ParticipantRole.PATIENT or fee_of(call) is None:
        return None
    if status_of(call, patient) in (FeeStatus.PAID, FeeStatus.WAIVED):
        return None
    return url_for("fees.fee_page", token=call.guest_token)


def join_notice(call: Call) -> str | None:
    """What a patient reads before giving their name, when the call has a fee."""
    if (fee := fee_of(call)) is None:
        return None
    return _(
        "%(clinic)s asks you to pay %(amount)s (%(description)s) before the call: by card on "
        "Stripe, once you have given your name.",
        clinic=call.clinic.name,
        amount=format_amount(fee.amount, fee.currency),
        description=fee.description,
    )


def latest_payment(call: Call, patient: Participant) -> PaymentRequest | None:
    theirs = _theirs(fee_requests(call), patient)
    return theirs[-1] if theirs else None


def open_payments(call: Call, patient: Participant) -> list[PaymentRequest]:
    """The patient's fee payments whose Checkout page is still open."""
    theirs = _theirs(fee_requests(call), patient)
    return [r for r in theirs if r.state == PaymentState.REQUESTED]


def checkout_for(
    call: Call, fee: CallFee, patient: Participant, stripe_api: StripeApi
) -> PaymentRequest:
    """The payment the patient pays the fee with on Stripe Checkout: their open one while its
    session lasts, else a new one (and a new session). Its key is worked out from the call's
    secret link, the patient and how many they have had, so a double click makes one."""
    if not call.is_open:
        raise requesting.PaymentRefused(_("This call has ended."))
    if (reason := requesting.why_payments_unavailable(call.clinic, call.clinician)) is not None:
        raise requesting.PaymentRefused(reason)
    theirs = _theirs(fee_requests(call), patient)
    open_one = next((r for r in reversed(theirs) if r.state == PaymentState.REQUESTED), None)
    if open_one is not None and open_one.expires_at <= utcnow():
        # Its time is up: Stripe says so (the webhook may not have come yet).
        transitions.sync_with_stripe(open_one, stripe_api)
    if open_one is not None and open_one.state == PaymentState.REQUESTED:
        return open_one
    key = _fee_key(call, patient, len(theirs) + 1)
    charge = requesting.Charge(
        fee.amount, fee.description, key, requesting.expiry(), payer=patient, pay_first=True
    )
    return requesting.make_request(call, fee.set_by, charge, stripe_api).request


def _fee_key(call: Call, patient: Participant, attempt: int) -> str:
    digest = hashlib.sha256(f"{call.guest_token}:{patient.id}:{attempt}".encode()).hexdigest()
    return f"fee-{digest[:32]}"


def waive(call: Call, patient: Participant, clinician: User) -> bool:
    """Let the patient in without paying; False when there is nothing to waive (paid, waived
    already, or no fee). One waiver a person, however many clicks."""
    if fee_of(call) is None or patient.role != ParticipantRole.PATIENT:
        return False
    if status_of(call, patient) in (FeeStatus.PAID, FeeStatus.WAIVED):
        return False
    try:
        with db.session.begin_nested():
            waiver = FeeWaiver(participant=patient, waived_by=clinician)
            db.session.add(waiver)
    except IntegrityError:  # the other click of a double click waived it first
        return False
    record_event(call, CallEventKind.FEE_WAIVED, participant=patient.id, name=patient.display_name)
    record_audit("payment.fee_waived", waiver, actor=clinician, participant=patient.id)
    return True
