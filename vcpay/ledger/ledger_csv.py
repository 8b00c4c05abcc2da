"""The payments a filter selects, as CSV for an accountant, written as it is read.

Rows are read in keyset batches of plain columns (no objects kept in the session) and each
batch is handed to the response as soon as it is written, so memory stays flat at any size.
UTF-8 with a byte order mark, so spreadsheet programs read names in any script. A text cell
that a spreadsheet would take for a formula (it starts with =, +, -, @, tab or carriage
return) is prefixed with an apostrophe; the amounts vcpay writes itself are left as numbers.
"""

import re
from collections.abc import Iterator
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import select

from vcpay.accounts_csv import BOM, dollars, iso_time, text_cell, written
from vcpay.clinic_clocks import zone_named
from vcpay.extensions import db
from vcpay.ledger.filters import STATUS_CHOICES, LedgerFilter
from vcpay.ledger.listing import id_batches
from vcpay.payments.models import SETTLED_STATES, PaymentRequest
from vcpay.payouts.models import Payout, PayoutTransaction
from vcpay.people.models import Clinic, User

PAYMENT_TYPES = ("charge", "payment")  # a payment's own balance transaction, not its refund
UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9]+")


def headers() -> list[str]:
    return [
        _("Date and time"),
        _("Paid at"),
        _("Clinic"),
        _("Amount"),
        _("Currency"),
        _("Status"),
        _("Receipt number"),
        _("Patient"),
        _("Patient email"),
        _("Clinician"),
        _("Description"),
        _("Refunded"),
        _("Fee"),
        _("Net"),
        _("Payout"),
        _("Request id"),
    ]


COLUMNS = (
    PaymentRequest.id,
    PaymentRequest.created_at,
    PaymentRequest.paid_at,
    PaymentRequest.amount,
    PaymentRequest.currency,
    PaymentRequest.state,
    PaymentRequest.receipt_number,
    PaymentRequest.patient_name,
    PaymentRequest.patient_email,
    PaymentRequest.description,
    PaymentRequest.amount_refunded,
    PaymentRequest.stripe_fee,
    Clinic.name.label("clinic_name"),
    Clinic.time_zone,
    User.name.label("clinician_name"),
)


def _rows(ids: list[int]):
    return db.session.execute(
        select(*COLUMNS)
        .join(Clinic, Clinic.id == PaymentRequest.clinic_id)
        .outerjoin(User, User.id == PaymentRequest.requested_by_id)
        .where(PaymentRequest.id.in_(ids))
        .order_by(PaymentRequest.created_at.desc(), PaymentRequest.id.desc())
    ).all()


def _payouts(ids: list[int]) -> dict[int, str]:
    found = db.session.execute(
        select(PayoutTransaction.payment_request_id, Payout.payout_id)
        .join(Payout, Payout.id == PayoutTransaction.payout_row_id)
        .where(
            PayoutTransaction.payment_request_id.in_(ids),
            PayoutTransaction.type.in_(PAYMENT_TYPES),
        )
    )
    return dict(found.all())


def _cells(row, payout: str) -> list[str]:
    zone = zone_named(row.time_zone)
    settled = row.state in SETTLED_STATES
    net = row.amount - row.amount_refunded - (row.stripe_fee or 0) if settled else None
    status = STATUS_CHOICES.get(row.state, (row.state, None))[0]
    texts = [row.clinic_name, str(status), row.receipt_number, row.patient_name]
    texts += [row.patient_email, row.clinician_name or "", row.description]
    clinic, status, receipt, patient, email, clinician, description = map(text_cell, texts)
    return [
        iso_time(row.created_at, zone),
        iso_time(row.paid_at, zone),
        clinic,
        dollars(row.amount),
        row.currency.upper(),
        status,
        receipt,
        patient,
        email,
        clinician,
        description,
        dollars(row.amount_refunded),
        dollars(row.stripe_fee),
        dollars(net),
        payout,
        str(row.id),
    ]


def csv_chunks(ledger: LedgerFilter, batch_size: int = 500) -> Iterator[str]:
    """The BOM and the header line at once (before any row is read), then one chunk a batch."""
    yield BOM + written([headers()])
    for ids in id_batches(ledger, batch_size):
        payouts = _payouts(ids)
        yield written(_cells(row, payouts.get(row.id, "")) for row in _rows(ids))


def file_name(ledger: LedgerFilter, today: date) -> str:
    """payments-harbourside-gp-clinic-2026-03-01-to-2026-03-31.csv, in ASCII."""
    clinic = next((v.clinic.name for v in ledger.views if v.clinic.id == ledger.clinic_id), "")
    place = UNSAFE_IN_NAME.sub("-", clinic).strip("-").lower() or "all-clinics"
    first = ledger.first_day.isoformat() if ledger.first_day else "start"
    last = (ledger.last_day or today).isoformat()
    return f"payments-{place}-{first}-to-{last}.csv"
