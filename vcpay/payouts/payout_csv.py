"""A payout's contents as CSV, for the clinic's accountant: written a row at a time (memory
stays flat whatever the payout holds), UTF-8 with a byte order mark so spreadsheet programs
read it as UTF-8, times in ISO 8601 with the clinic's offset, dollars with two decimals, and
every text cell kept from being read as a formula."""

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from flask_babel import gettext as _

from vcpay.extensions import db
from vcpay.payouts.contents import transactions_query, type_label
from vcpay.payouts.models import Payout, PayoutTransaction

BOM = "\ufeff"
# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BATCH = 500


def text_cell(value: object) -> str:
    """Text as the accountant should see it, never run: a leading quote disarms a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def dollars(cents: int) -> str:
    """``-1234`` → ``-12.34``: exact, without floating point."""
    whole, part = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole}.{part:02d}"


def iso_time(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(timespec="seconds")


def header() -> list[str]:
    return [
        _("Date"), _("Type"), _("Patient"), _("Description"), _("Receipt number"),
        _("Clinician"), _("Clinic"), _("Gross"), _("Fee"), _("Net"), _("Currency"),
        _("Stripe transaction"), _("Stripe source"), _("Payout"), _("Payout arrival date"),
    ]  # fmt: skip


def line(transaction: PayoutTransaction, payout: Payout, zone: ZoneInfo) -> list[str]:
    request = transaction.payment_request
    clinician = request.requested_by.name if request and request.requested_by else ""
    texts = [
        type_label(transaction),
        request.patient_name if request else "",
        request.description if request else transaction.description,
        request.receipt_number if request else "",
        clinician,
        request.clinic.name if request else "",
    ]
    return [
        iso_time(transaction.created, zone),
        *(text_cell(t) for t in texts),
        dollars(transaction.amount),
        dollars(transaction.fee),
        dollars(transaction.net),
        transaction.currency.upper(),
        text_cell(transaction.balance_transaction_id),
        text_cell(transaction.source_id),
        text_cell(payout.payout_id),
        payout.arrival_date.astimezone(zone).date().isoformat(),
    ]


def rows(payout: Payout, time_zone: str) -> Iterator[str]:
    """The file, a row at a time."""
    zone = ZoneInfo(time_zone)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flushed() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(header())
    yield BOM + flushed()
    query = transactions_query(payout).execution_options(yield_per=BATCH)
    for transaction in db.session.scalars(query):
        writer.writerow(line(transaction, payout, zone))
        yield flushed()
