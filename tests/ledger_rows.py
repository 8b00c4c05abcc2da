"""Payment requests written straight to the database, for the Payments page's tests: fast,
with the times, states and people each test needs (no Stripe involved)."""

import secrets
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from vcpay.calls.models import Call
from vcpay.extensions import db
from vcpay.payments.models import PaymentRequest, PaymentState
from vcpay.people.models import Clinic, User


def call_in(clinic: Clinic, clinician: User | None, title: str = "Pat Citizen") -> Call:
    call = Call(clinic=clinic, clinician=clinician, title=title)
    db.session.add(call)
    db.session.flush()
    return call


def payment(
    call: Call,
    created_at: datetime,
    amount: int = 85_00,
    state: PaymentState = PaymentState.PAID,
    **values,
) -> PaymentRequest:
    """A request of ``call`` made at ``created_at`` (aware), paid unless told otherwise."""
    key = secrets.token_urlsafe(12)
    settled = state in (PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED)
    row = PaymentRequest(
        request_key=key,
        call=call,
        clinic=call.clinic,
        requested_by=values.pop("requested_by", call.clinician),
        amount=amount,
        description=values.pop("description", "Consultation"),
        state=state.value,
        created_at=created_at,
        updated_at=created_at,
        stripe_account_id="acct_ledger",
        checkout_session_id=f"cs_test_{key}",
        checkout_url="https://checkout.example/" + key,
        expires_at=created_at + timedelta(hours=1),
        paid_at=created_at + timedelta(minutes=2) if settled else None,
        patient_name=values.pop("patient_name", "Pat Citizen"),
        patient_email=values.pop("patient_email", "pat@example.org"),
        **values,
    )
    db.session.add(row)
    db.session.flush()
    return row


def many(call: Call, count: int, start: datetime, step=timedelta(minutes=7), **values) -> None:
    """``count`` paid requests, one every ``step`` from ``start``, inserted in bulk."""
    rows = []
    for n in range(count):
        at = start + step * n
        key = f"bulk{n}-{secrets.token_hex(6)}"
        rows.append(
            {
                "request_key": key, "call_id": call.id, "clinic_id": call.clinic_id,
                "requested_by_id": call.clinician_id, "amount": 10_00 + n % 500,
                "currency": "aud", "description": values.get("description", f"Visit {n}"),
                "state": PaymentState.PAID.value, "created_at": at, "updated_at": at,
                "stripe_account_id": "acct_ledger", "checkout_session_id": f"cs_{key}",
                "checkout_url": "https://checkout.example/x", "expires_at": at, "paid_at": at,
                "patient_name": f"Patient {n}", "patient_email": f"p{n}@example.org",
                "patient_locale": "", "receipt_number": f"R-{n}", "card_brand": "visa",
                "card_last4": "4242", "amount_refunded": 0, "last_decline": "",
            }
        )  # fmt: skip
    db.session.execute(PaymentRequest.__table__.insert(), rows)
    db.session.flush()


def sydney(year, month, day, hour, minute=0) -> datetime:
    """A Sydney wall-clock time, as the aware UTC moment vcpay stores."""
    local = datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("Australia/Sydney"))
    return local.astimezone(UTC)
