"""The rows a filter selects: a page at a time (keyset), all of them in batches, and their
totals.

A page is read newest first by (created_at, id) from the index (clinic_id, created_at, id):
one index seek per clinic, each limited to the page, merged in a UNION ALL. With several
clinics a single query over all of them would have to sort every matching row first; this
reads at most a page from each.
"""

from dataclasses import dataclass

from sqlalchemy import and_, case, func, or_, select, tuple_, union_all
from sqlalchemy.orm import joinedload

from vcpay.extensions import db
from vcpay.ledger.filters import ClinicView, LedgerFilter
from vcpay.ledger.keyset import Position
from vcpay.payments.models import SETTLED_STATES, PaymentRequest

PAGE_SIZE = 50
SEARCHED = (
    PaymentRequest.description,
    PaymentRequest.receipt_number,
    PaymentRequest.patient_name,
    PaymentRequest.patient_email,
)


def like_pattern(text: str) -> str:
    """``text`` anywhere, its own %, _ and backslash taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def conditions(ledger: LedgerFilter, view: ClinicView) -> list:
    """What a row of ``view``'s clinic must meet, its days counted in that clinic's zone."""
    found = [PaymentRequest.clinic_id == view.clinic.id]
    if view.own_of is not None:
        found.append(PaymentRequest.requested_by_id == view.own_of)
    start, end = view.day_bounds(ledger.first_day, ledger.last_day)
    if start is not None:
        found.append(PaymentRequest.created_at >= start)
    if end is not None:
        found.append(PaymentRequest.created_at < end)
    if ledger.states is not None:
        found.append(PaymentRequest.state.in_(sorted(ledger.states)))
    if ledger.clinician_id is not None:
        found.append(PaymentRequest.requested_by_id == ledger.clinician_id)
    if ledger.account:
        found.append(PaymentRequest.stripe_account_id == ledger.account)
    if ledger.search:
        pattern = like_pattern(ledger.search)
        found.append(or_(*(column.ilike(pattern, escape="\\") for column in SEARCHED)))
    return found


def selected(ledger: LedgerFilter):
    """The whole filter as one condition (for totals and the chart)."""
    if not ledger.views:
        return PaymentRequest.id.is_(None)
    return or_(*(and_(*conditions(ledger, view)) for view in ledger.views))


def _keys(ledger: LedgerFilter, position: Position | None, size: int, newer: bool):
    """The ids and keys of the next ``size`` rows after ``position`` (before, if ``newer``)."""
    key = tuple_(PaymentRequest.created_at, PaymentRequest.id)
    order = (
        (PaymentRequest.created_at.asc(), PaymentRequest.id.asc())
        if newer
        else (PaymentRequest.created_at.desc(), PaymentRequest.id.desc())
    )
    parts = []
    for view in ledger.views:
        part = select(PaymentRequest.id, PaymentRequest.created_at).where(*conditions(ledger, view))
        if position is not None:
            edge = tuple_(position.created_at, position.id)
            part = part.where(key > edge if newer else key < edge)
        parts.append(select(part.order_by(*order).limit(size).subquery()))
    merged = union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    direction = "asc" if newer else "desc"
    ordering = [getattr(merged.c.created_at, direction)(), getattr(merged.c.id, direction)()]
    return select(merged.c.id, merged.c.created_at).order_by(*ordering).limit(size)


@dataclass(frozen=True)
class Page:
    rows: list[PaymentRequest]
    older: Position | None  # where the next (older) page starts, if there is one
    newer: Position | None  # where the previous (newer) page ends, if there is one


def page_of(
    ledger: LedgerFilter, position: Position | None, newer: bool = False, size: int = PAGE_SIZE
) -> Page:
    """One page, newest first, and whether there are rows beyond it either way (one row more
    is read to know; nothing is counted)."""
    if not ledger.views:
        return Page([], None, None)
    keys = db.session.execute(_keys(ledger, position, size + 1, newer)).all()
    more, keys = len(keys) > size, keys[:size]
    if newer:
        keys.reverse()
    rows = _load([k.id for k in keys])
    first = Position(keys[0].created_at, keys[0].id) if keys else None
    last = Position(keys[-1].created_at, keys[-1].id) if keys else None
    if newer:
        return Page(rows, older=last, newer=first if more else None)
    return Page(rows, older=last if more else None, newer=first if position else None)


def _load(ids: list[int]) -> list[PaymentRequest]:
    found = db.session.scalars(
        select(PaymentRequest)
        .where(PaymentRequest.id.in_(ids))
        .options(joinedload(PaymentRequest.clinic), joinedload(PaymentRequest.requested_by))
    ).all()
    by_id = {row.id: row for row in found}
    return [by_id[i] for i in ids if i in by_id]


def batch_keys(ledger: LedgerFilter, position: Position | None, size: int):
    """The ids and keys of the ``size`` selected rows after ``position``, newest first, as a
    subquery (``id``, ``created_at``) to join the columns a reader wants: reading every row
    this way, a batch at a time, keeps memory flat however many rows there are."""
    return _keys(ledger, position, size, newer=False).subquery()


@dataclass(frozen=True)
class Totals:
    count: int
    paid_count: int
    gross: int  # what settled payments took, before refunds
    refunded: int

    @property
    def net(self) -> int:
        return self.gross - self.refunded


def totals_of(ledger: LedgerFilter) -> Totals:
    """Over the whole filter, not the page."""
    settled = PaymentRequest.state.in_(sorted(SETTLED_STATES))
    row = db.session.execute(
        select(
            func.count(PaymentRequest.id),
            func.coalesce(func.sum(case((settled, 1), else_=0)), 0),
            func.coalesce(func.sum(case((settled, PaymentRequest.amount), else_=0)), 0),
            func.coalesce(func.sum(case((settled, PaymentRequest.amount_refunded), else_=0)), 0),
        ).where(selected(ledger))
    ).one()
    return Totals(*(int(value) for value in row))
