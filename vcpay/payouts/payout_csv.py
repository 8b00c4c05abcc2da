"""A payout's contents as CSV, for the clinic's accountant: written a row at a time (memory
stays flat whatever the payout holds), UTF-8 with a byte order mark so spreadsheet programs
read it as UTF-8, times in ISO 8601 with the clinic's offset, dollars with two decimals, and
every text cell kept from being read as a formula."""

from collections.abc import Iterator
from zoneinfo import ZoneInfo

from flask import Flask
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import and_, or_

from vcpay.accounts_csv import BOM, dollars, text_cell, written
from vcpay.clinic_clocks import iso_time, zone_named
from vcpay.extensions import db
from vcpay.payouts.contents import transactions_query, type_label
from vcpay.payouts.models import Payout, PayoutTransaction

BATCH = 500


def header() -> list[str]:
    return [
        _("Date"),
        _("Type"),
        _("Patient"),
        _("Description"),
        _("Receipt number"),
        _("Clinician"),
        _("Clinic"),
        _("Gross"),
        _("Fee"),
        _("Net"),
        _("Currency"),
        _("Stripe transaction"),
        _("Stripe source"),
        _("Payout"),
        _("Payout arrival date"),
    ]


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


def rows(app: Flask, payout_id: int, time_zone: str, locale: str) -> Iterator[str]:
    """The file, a batch of rows at a time. It is written after the view has answered, so
    each batch is read in an application context of its own (none is held across a yield),
    in the language of the page that asked for it."""
    zone = zone_named(time_zone)
    after: tuple | None = None
    first = True
    while True:
        with app.app_context(), force_locale(locale):
            payout = db.session.get(Payout, payout_id)
            batch = list(db.session.scalars(_after(transactions_query(payout), after).limit(BATCH)))
            text = written(([header()] if first else []) + [line(t, payout, zone) for t in batch])
            after = (batch[-1].created, batch[-1].id) if batch else None
            db.session.remove()
        yield (BOM + text) if first else text
        first = False
        if len(batch) < BATCH:
            return


def _after(query, after: tuple | None):
    """Keyset: the rows after the last one written, in the query's order (created, id)."""
    if after is None:
        return query
    created, row_id = after
    return query.where(
        or_(
            PayoutTransaction.created > created,
            and_(PayoutTransaction.created == created, PayoutTransaction.id > row_id),
        )
    )
