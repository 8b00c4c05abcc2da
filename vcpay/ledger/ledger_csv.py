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
from sqlalchemy import and_, select

from vcpay.accounts_csv import BOM, dollars, text_cell, written
from vcpay.clinic_clocks import iso_time, zone_named
from vcpay.extensions import db
from vcpay.ledger.filters import STATUS_CHOICES, LedgerFilter
from vcpay.ledger.keyset import Position
from vcpay.ledger.listing import batch_keys
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
        _("Off-session"),
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
    PaymentRequest.off_session,
)


def _rows(ledger: LedgerFilter, position: Position | None, size: int) -> list:
    """The next batch, columns and payout together: one query, no list of ids sent back.
    The payout is joined (a subquery per row would read every payout once per row); a
    charge is carried by one payout, but should two rows ever name one payment, the first
    is kept."""
    keys = batch_keys(ledger, position, size)
    charge = and_(
        PayoutTransaction.payment_request_id == PaymentRequest.id,
        PayoutTransaction.type.in_(PAYMENT_TYPES),
    )
    # Plain rows through the session's connection: the ORM would only pass them through.
    rows = (
        db.session.connection()
        .execute(
            select(*COLUMNS, Payout.payout_id)
            .select_from(keys)
            .join(PaymentRequest, PaymentRequest.id == keys.c.id)
            .join(Clinic, Clinic.id == PaymentRequest.clinic_id)
            .outerjoin(User, User.id == PaymentRequest.requested_by_id)
            .outerjoin(PayoutTransaction, charge)
            .outerjoin(Payout, Payout.id == PayoutTransaction.payout_row_id)
            .order_by(keys.c.created_at.desc(), keys.c.id.desc(), PayoutTransaction.id)
        )
        .all()
    )
    return _one_per_payment(rows)


def _one_per_payment(rows: list) -> list:
    kept: list = []
    for row in rows:
        if not kept or kept[-1].id != row.id:
            kept.append(row)
    return kept


def _batches(ledger: LedgerFilter, size: int) -> Iterator[list]:
    """Every selected row, newest first, ``size`` at a time, each batch a keyset query."""
    position = None
    while ledger.views:
        rows = _rows(ledger, position, size)
        if rows:
            yield rows
        if len(rows) < size:
            return
        position = Position(rows[-1].created_at, rows[-1].id)


def status_names() -> dict[str, str]:
    """Each state's name in the reader's language, translated once for the whole file."""
    names = {state: str(label) for state, (label, _states) in STATUS_CHOICES.items()}
    return {**names, "off_session": _("Yes")}


def _cells(row, statuses: dict[str, str]) -> list[str]:
    """One line of the file; the row is unpacked by position (in the order of COLUMNS), which
    costs a fraction of reading each column by name, a hundred thousand times over."""
    (
        row_id,
        created_at,
        paid_at,
        amount,
        currency,
        state,
        receipt,
        patient,
        email,
        description,
        refunded,
        fee,
        clinic,
        time_zone,
        clinician,
        off_session,
        payout,
    ) = row
    zone = zone_named(time_zone)
    net = amount - refunded - (fee or 0) if state in SETTLED_STATES else None
    texts = (clinic, statuses.get(state, state), receipt, patient, email, clinician, description)
    clinic, status, receipt, patient, email, clinician, description = map(text_cell, texts)
    return [
        iso_time(created_at, zone),
        iso_time(paid_at, zone),
        clinic,
        dollars(amount),
        currency.upper(),
        status,
        receipt,
        patient,
        email,
        clinician,
        description,
        dollars(refunded),
        dollars(fee),
        dollars(net),
        payout or "",
        str(row_id),
        statuses["off_session"] if off_session else "",
    ]


def csv_chunks(ledger: LedgerFilter, batch_size: int = 500) -> Iterator[str]:
    """The BOM and the header line at once (before any row is read), then one chunk a batch."""
    yield BOM + written([headers()])
    statuses = status_names()
    for rows in _batches(ledger, batch_size):
        yield written(_cells(row, statuses) for row in rows)


def file_name(ledger: LedgerFilter, today: date) -> str:
    """payments-harbourside-gp-clinic-2026-03-01-to-2026-03-31.csv, in ASCII."""
    clinic = next((v.clinic.name for v in ledger.views if v.clinic.id == ledger.clinic_id), "")
    place = UNSAFE_IN_NAME.sub("-", clinic).strip("-").lower() or "all-clinics"
    first = ledger.first_day.isoformat() if ledger.first_day else "start"
    last = (ledger.last_day or today).isoformat()
    return f"payments-{place}-{first}-to-{last}.csv"
