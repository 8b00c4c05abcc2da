"""The demo's past: weeks of the GP clinic's payments, as vcpay would have recorded them.

``make run`` writes past payments into the clinic's Stripe account at the Stripe stand-in
first, and hands its answer (the ids Stripe gave each) to ``flask demo-history``, which
writes vcpay's side here: for each payment a call that has ended, its payment request in the
state it came to, the call's events, the refunds and the receipt email sent. Rows carry their
times in the past. Idempotent by the payment's key: a key already recorded is left alone.

Demo tooling like ``seed_demo``: never used by the product itself. Longer than most modules
because it writes every kind of row a payment's life leaves, as the product would have.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from vcpay.audit.services import record_audit
from vcpay.calls.events import CallEventKind
from vcpay.calls.models import Audience, Call, CallEvent, CallState, Participant, ParticipantRole
from vcpay.client_payments.models import StripeLink
from vcpay.client_payments.stripe_link import live_link, refresh_links
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.mail.models import EmailState
from vcpay.mail.services import compose_email
from vcpay.payments.amounts import format_amount
from vcpay.payments.models import PaymentRefund, PaymentRequest, PaymentState, RefundState
from vcpay.payments.receipts import receipt_url
from vcpay.payouts.services import refresh_account
from vcpay.people.demo import CLINICS, DEMO_PEOPLE, seed_demo
from vcpay.people.models import Clinic, User
from vcpay.people.services import find_user_by_email

# The demo's clinic admin refunds, its clinician asks; see DEMO_PEOPLE.
CLINIC_ADMIN, CLINICIAN = DEMO_PEOPLE[2].email, DEMO_PEOPLE[3].email
# What a clinic admin would have typed for each of Stripe's refund reasons.
REFUND_NOTES = {
    "duplicate": "Charged twice for the same consultation",
    "requested_by_customer": "Patient asked for a refund",
    "fraudulent": "Card used without the holder's consent",
    None: "Consultation cut short",
}
# How the history's requests that were never paid ended, in vcpay's words.
UNPAID_ENDS = {"expired": PaymentState.EXPIRED, "cancelled": PaymentState.CANCELLED}


class HistoryUnreadable(ValueError):
    """The answer given does not read as the Stripe stand-in's history."""


@dataclass(frozen=True)
class Written:
    payments: int
    already: int


def _audit_at(at: datetime, action: str, target: Any, actor: User, **details: Any) -> None:
    """The audit entry vcpay wrote when this happened, at the time it happened."""
    record_audit(action, target, actor=actor, **details).occurred_at = at


def moment(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def _people() -> tuple[User, User]:
    admin, clinician = find_user_by_email(CLINIC_ADMIN), find_user_by_email(CLINICIAN)
    if admin is None or clinician is None:
        raise HistoryUnreadable("The demo people are missing: run flask seed-demo first.")
    return admin, clinician


def gp_clinic() -> Clinic:
    organisation = seed_demo(enable_gateway=True)
    return next(clinic for clinic in organisation.clinics if clinic.name == CLINICS[0])


def ensure_link(clinic: Clinic, account_id: str, since: datetime, admin: User) -> StripeLink:
    """The clinic's live link to the account that took its past payments, made as if its
    admin had linked it before the first of them."""
    link = live_link(clinic)
    if link is not None:
        if link.account_id != account_id:
            raise HistoryUnreadable(
                f"{clinic.name} is linked to {link.account_id}, not {account_id}: its history "
                "belongs to the account it is linked to."
            )
        return link
    link = StripeLink(
        clinic=clinic,
        account_id=account_id,
        linked_at=since,
        linked_by=admin,
        refreshed_at=since,
        created_at=since,
        is_default=True,
    )
    db.session.add(link)
    db.session.flush()
    _audit_at(since, "stripe.linked", clinic, admin, account=account_id, shared_with=[])
    return link


def _event(call: Call, kind: CallEventKind, at: datetime, audience=Audience.EVERYONE, **data):
    db.session.add(
        CallEvent(call=call, kind=kind, audience=audience.value, data=data, created_at=at)
    )


def _announce(request: PaymentRequest, kind: CallEventKind, at: datetime, state: str, **extra):
    """The call event vcpay wrote for this change (vcpay.payments.transitions.announce)."""
    _event(
        request.call,
        kind,
        at,
        extra.pop("audience", Audience.EVERYONE),
        request=request.request_key,
        state=state,
        amount=format_amount(request.amount, request.currency),
        description=request.description,
        **extra,
    )


def _past_call(clinic: Clinic, clinician: User, patient: str, start: datetime, end: datetime):
    call = Call(
        clinic=clinic,
        clinician=clinician,
        title=patient[:120],
        state=CallState.ENDED.value,
        ended_at=end,
        created_at=start,
    )
    db.session.add(call)
    doctor = Participant(
        call=call,
        role=ParticipantRole.CLINICIAN.value,
        display_name=clinician.name[:80],
        user_id=clinician.id,
        created_at=start,
    )
    joined = start + timedelta(minutes=1)
    guest = Participant(
        call=call, role=ParticipantRole.PATIENT.value, display_name=patient[:80], created_at=joined
    )
    db.session.add_all([doctor, guest])
    db.session.flush()
    _event(call, CallEventKind.CALL_STARTED, start)
    _event(call, CallEventKind.PARTICIPANT_JOINED, joined, name=guest.display_name, role=guest.role)
    return call, guest


def _text(item: Mapping[str, Any], name: str) -> str:
    value = item.get(name)
    if not isinstance(value, str) or not value:
        raise HistoryUnreadable(f"Each payment needs its '{name}'.")
    return value


def _refund_key(stripe_refund_id: str) -> str:
    """The refund form's key it would have had: one per refund, the same every run."""
    return "history-" + hashlib.sha256(stripe_refund_id.encode()).hexdigest()[:32]


def _state_after(amount: int, refunded: int) -> PaymentState:
    if refunded <= 0:
        return PaymentState.PAID
    return PaymentState.REFUNDED if refunded >= amount else PaymentState.PARTIALLY_REFUNDED


class HistoryWriter:
    """Writes one payment at a time for the clinic; flushes, the command commits."""

    def __init__(self, clinic: Clinic, account_id: str, admin: User, clinician: User):
        self.clinic = clinic
        self.account_id = account_id
        self.admin = admin
        self.clinician = clinician

    def write(self, key: str, item: Mapping[str, Any]) -> PaymentRequest:
        requested = moment(item.get("requested_at"))
        if requested is None:
            raise HistoryUnreadable(f"Payment {key} needs its 'requested_at'.")
        paid = moment(item.get("paid_at"))
        patient = item.get("patient_name") or item.get("name") or "Patient"
        last = paid or requested
        call, payer = _past_call(
            self.clinic,
            self.clinician,
            patient,
            requested - timedelta(minutes=4),
            last + timedelta(minutes=6) if paid else requested + timedelta(minutes=20),
        )
        request = self._request(key, item, call, payer, requested)
        _announce(request, CallEventKind.PAYMENT_REQUESTED, requested, PaymentState.REQUESTED)
        if item.get("declined"):
            declined_at = moment(item.get("declined_at")) or requested
            _announce(
                request,
                CallEventKind.PAYMENT_DECLINED,
                declined_at,
                PaymentState.REQUESTED,
                message=str(item["declined"])[:300],
            )
        if paid is None:
            self._unpaid(request, item)
        else:
            self._paid(request, item, paid)
        _event(call, CallEventKind.CALL_ENDED, call.ended_at)
        db.session.flush()
        return request

    def _request(self, key, item, call, payer, requested) -> PaymentRequest:
        request = PaymentRequest(
            request_key=key[:40],
            call=call,
            clinic=self.clinic,
            requested_by=self.clinician,
            payer=payer,
            amount=int(item["amount"]),
            currency=str(item.get("currency") or "aud")[:3],
            description=_text(item, "description")[:120],
            state=PaymentState.REQUESTED.value,
            stripe_account_id=self.account_id,
            checkout_session_id=_text(item, "session_id"),
            checkout_url="",  # the page is long gone
            expires_at=moment(item.get("expires_at")) or requested,
            patient_name=payer.display_name,
            patient_locale=str(item.get("patient_locale") or "")[:16],
            created_at=requested,
            updated_at=requested,
        )
        db.session.add(request)
        db.session.flush()
        _audit_at(requested, "payment.requested", request, self.clinician, amount=request.amount)
        return request

    def _unpaid(self, request: PaymentRequest, item: Mapping[str, Any]) -> None:
        """Expired at the end of its Checkout window, or cancelled by the clinician soon
        after asking."""
        ended = UNPAID_ENDS.get(str(item.get("ended") or "expired"), PaymentState.EXPIRED)
        if ended == PaymentState.CANCELLED:
            at, kind = request.created_at + timedelta(minutes=3), CallEventKind.PAYMENT_CANCELLED
        else:
            at, kind = request.expires_at, CallEventKind.PAYMENT_EXPIRED
        request.state, request.updated_at = ended.value, at
        _announce(request, kind, at, ended)
        if ended == PaymentState.CANCELLED:
            _audit_at(at, "payment.cancelled", request, self.clinician, amount=request.amount)

    def _paid(self, request: PaymentRequest, item: Mapping[str, Any], paid: datetime) -> None:
        request.payment_intent_id = item.get("payment_intent_id")
        request.charge_id = item.get("charge_id")
        request.stripe_fee = item.get("fee")
        request.paid_at = request.acknowledged_at = request.reconciled_at = paid
        request.patient_email = str(item.get("email") or "")[:254]
        request.receipt_number = str(item.get("receipt_number") or "")[:64]
        request.card_brand = str(item.get("card_brand") or "")[:20]
        request.card_last4 = str(item.get("card_last4") or "")[:4]
        request.state, request.updated_at = PaymentState.PAID.value, paid
        _announce(
            request,
            CallEventKind.PAYMENT_PAID,
            paid,
            PaymentState.PAID,
            patient=request.patient_name,
        )
        self._receipt(request, paid)
        for refund in sorted(item.get("refunds") or (), key=lambda r: r["created"]):
            self._refund(request, refund)

    def _receipt(self, request: PaymentRequest, paid: datetime) -> None:
        """The receipt as vcpay emailed it (vcpay.payments.transitions), already sent."""
        if not request.patient_email:
            return
        email = compose_email(
            f"receipt:{request.id}",
            request.patient_email,
            _l("Your receipt from %(clinic)s", clinic=request.clinic.name),
            "payment_receipt",
            locale=request.patient_locale or None,
            sender_name=request.clinic.name,
            request=request,
            amount=format_amount(request.amount, request.currency),
            receipt_url=receipt_url(request),
        )
        sent = paid + timedelta(seconds=20)
        email.state, email.attempts, email.sent_at, email.created_at = (
            EmailState.SENT.value,
            1,
            sent,
            paid,
        )
        db.session.add(email)

    def _refund(self, request: PaymentRequest, refund: Mapping[str, Any]) -> None:
        at = moment(refund["created"])
        amount = int(refund["amount"])
        reason = refund.get("note") or REFUND_NOTES.get(refund.get("reason"), "")
        db.session.add(
            PaymentRefund(
                payment_request=request,
                refund_key=_refund_key(refund["id"]),
                stripe_refund_id=refund["id"],
                amount=amount,
                reason=reason,
                state=RefundState.SUCCEEDED.value,
                requested_by=self.admin,
                created_at=at,
                updated_at=at,
            )
        )
        _audit_at(at, "payment.refunded", request, self.admin, amount=amount, reason=reason)
        request.amount_refunded = min(request.amount, request.amount_refunded + amount)
        state = _state_after(request.amount, request.amount_refunded)
        request.state, request.updated_at = state.value, at
        _announce(
            request,
            CallEventKind.PAYMENT_REFUNDED,
            at,
            state,
            audience=Audience.STAFF,
            refunded=format_amount(request.amount_refunded, request.currency),
        )


def recorded_keys(keys: list[str]) -> set[str]:
    found = db.session.scalars(
        select(PaymentRequest.request_key).where(PaymentRequest.request_key.in_(keys))
    )
    return set(found)


def write_history(answer: Any, stripe_api: StripeApi) -> Written:
    """vcpay's side of the stand-in's answer, for the GP clinic; flushes, the caller commits.
    Reads the account from Stripe for the link's page, once the link is new."""
    if not isinstance(answer, dict) or not isinstance(answer.get("payments"), dict):
        raise HistoryUnreadable("Expected the Stripe stand-in's history: {account, payments}.")
    account_id = answer.get("account")
    if not isinstance(account_id, str) or not account_id.startswith("acct_"):
        raise HistoryUnreadable("The history names no Stripe account.")
    payments = sorted(answer["payments"].items(), key=lambda kv: kv[1].get("requested_at") or 0)
    admin, clinician = _people()
    clinic = gp_clinic()
    oldest = moment(payments[0][1].get("requested_at")) if payments else None
    new_link = live_link(clinic) is None
    ensure_link(clinic, account_id, (oldest or datetime.now(UTC)) - timedelta(days=3), admin)
    if new_link:
        refresh_links(account_id, stripe_api)
    already = recorded_keys([key for key, _item in payments])
    writer = HistoryWriter(clinic, account_id, admin, clinician)
    for key, item in payments:
        if key not in already:
            writer.write(key, item)
    db.session.flush()
    return Written(payments=len(payments) - len(already), already=len(already))


def read_payouts(account_id: str, stripe_api: StripeApi) -> int:
    """The account's payouts and what each carried, read from Stripe through the adapter as
    the hourly refresh does; how many. Commits each payout as its own unit."""
    return len(refresh_account(account_id, stripe_api))
