"""The audit entries a filter selects, as CSV, written as it is read.

Entries are read in keyset batches and each batch is handed to the response once written, so
memory stays flat at any size. UTF-8 with a byte order mark and every text cell kept from
being run as a formula (``vcpay.accounts_csv``); times in ISO 8601 on the clocks of the
entry's clinic (its organisation's when it has none).
"""

import json
from collections.abc import Iterator
from datetime import date

from flask_babel import gettext as _

from vcpay.accounts_csv import BOM, text_cell, written
from vcpay.audit.models import AuditEntry
from vcpay.audit.reading import AuditFilter, entries, kind_of, position_of
from vcpay.clinic_clocks import clinic_iso
from vcpay.extensions import db


def headers() -> list[str]:
    return [
        _("Date and time"),
        _("Person"),
        _("Person's email"),
        _("Kind"),
        _("Action"),
        _("What"),
        _("Clinic"),
        _("Address"),
        _("Details"),
        _("Entry id"),
    ]


def _cells(entry: AuditEntry, audit: AuditFilter) -> list[str]:
    place = audit.scope.place_of(entry)
    actor = entry.actor
    texts = (
        actor.name if actor else _("vcpay"),
        actor.email if actor else "",
        kind_of(entry.action),
        entry.action,
        f"{entry.object_type} {entry.object_id}",
        audit.scope.clinic_name(entry),
        entry.address,
        json.dumps(entry.details or {}, ensure_ascii=False, sort_keys=True, default=str),
    )
    return [clinic_iso(entry.occurred_at, place), *map(text_cell, texts), str(entry.id)]


def csv_chunks(audit: AuditFilter, batch_size: int = 500) -> Iterator[str]:
    """The BOM and the header line at once, then one chunk a batch."""
    yield BOM + written([headers()])
    position = None
    while True:
        batch = entries(audit, position, batch_size)
        if batch:
            yield written(_cells(entry, audit) for entry in batch)
        if len(batch) < batch_size:
            return
        position = position_of(batch[-1])
        for entry in batch:  # only read: the session need not keep them
            db.session.expunge(entry)


def file_name(today: date) -> str:
    return f"audit-log-{today.isoformat()}.csv"
