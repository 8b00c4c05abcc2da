"""What settled payments took each day, a day being its clinic's calendar day.

On PostgreSQL the database counts days itself, in each row's clinic's zone
(``timezone(clinics.time_zone, created_at)``); SQLite knows no time zones, so there the rows
are read in batches and counted here. Both give the same days.
"""

from dataclasses import dataclass, replace
from datetime import date, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.exc import DBAPIError

from vcpay.extensions import db
from vcpay.ledger.filters import LedgerFilter, today_in
from vcpay.ledger.listing import Totals, selected, totals_of
from vcpay.payments.models import SETTLED_STATES, PaymentRequest
from vcpay.people.models import Clinic

DEFAULT_DAYS = 30
MOST_DAYS = 366


@dataclass(frozen=True)
class DailyTakings:
    first_day: date
    last_day: date
    amounts: dict[date, int]  # cents taken on each day that took any
    shortened: bool = False  # the filter spans more days than a chart shows

    def days(self) -> list[tuple[date, int]]:
        count = (self.last_day - self.first_day).days + 1
        every = (self.first_day + timedelta(days=n) for n in range(count))
        return [(day, self.amounts.get(day, 0)) for day in every]


def chart_days(ledger: LedgerFilter) -> tuple[date, date, bool]:
    """The filter's days; without them, the last 30 up to today (the first clinic's today);
    at most a year, the latest of the range."""
    today = today_in(ledger.views)
    last = ledger.last_day or max(today, ledger.first_day or today)
    first = ledger.first_day or last - timedelta(days=DEFAULT_DAYS - 1)
    if (last - first).days >= MOST_DAYS:
        return last - timedelta(days=MOST_DAYS - 1), last, True
    return first, last, False


def daily_takings(ledger: LedgerFilter) -> DailyTakings:
    first, last, shortened = chart_days(ledger)
    within = replace(ledger, first_day=first, last_day=last)
    amounts = None
    if db.session.get_bind().dialect.name == "postgresql":
        amounts = _counted_by_postgresql(within)
    if amounts is None:
        amounts = _counted_here(within)
    return DailyTakings(first, last, amounts, shortened)


def _settled(ledger: LedgerFilter):
    return selected(ledger), PaymentRequest.state.in_(sorted(SETTLED_STATES))


def _counted_by_postgresql(ledger: LedgerFilter) -> dict[date, int] | None:
    """None if PostgreSQL does not know a clinic's zone (its zone database may be older than
    Python's): the savepoint keeps the request's transaction usable, and Python counts."""
    local_day = func.date(func.timezone(Clinic.time_zone, PaymentRequest.created_at))
    query = (
        select(local_day, func.sum(PaymentRequest.amount))
        .join(Clinic, Clinic.id == PaymentRequest.clinic_id)
        .where(*_settled(ledger))
        .group_by(local_day)
    )
    try:
        with db.session.begin_nested():
            rows = db.session.execute(query).all()
    except DBAPIError:
        return None
    return {day: int(amount) for day, amount in rows}


def _counted_here(ledger: LedgerFilter) -> dict[date, int]:
    zones = {view.clinic.id: view.zone for view in ledger.views}
    amounts: dict[date, int] = {}
    rows = db.session.execute(
        select(PaymentRequest.created_at, PaymentRequest.clinic_id, PaymentRequest.amount)
        .where(*_settled(ledger))
        .execution_options(yield_per=1000)
    )
    for created_at, clinic_id, amount in rows:
        day = created_at.astimezone(zones[clinic_id]).date()
        amounts[day] = amounts.get(day, 0) + amount
    return amounts


def totals_and_takings(ledger: LedgerFilter) -> tuple[Totals, DailyTakings]:
    """The selection's totals and its chart. When the chart shows every day the filter asks
    for, PostgreSQL counts both in one scan, by day: a search then reads each row once, not
    once for the totals and again for the chart."""
    first, last, shortened = chart_days(ledger)
    whole_filter = (first, last) == (ledger.first_day, ledger.last_day)
    if whole_filter and db.session.get_bind().dialect.name == "postgresql":
        found = _both_by_postgresql(ledger)
        if found is not None:
            totals, amounts = found
            return totals, DailyTakings(first, last, amounts, shortened)
    return totals_of(ledger), daily_takings(ledger)


def _both_by_postgresql(ledger: LedgerFilter) -> tuple[Totals, dict[date, int]] | None:
    """As ``totals_of`` and ``_counted_by_postgresql`` together; None as the latter."""
    settled = PaymentRequest.state.in_(sorted(SETTLED_STATES))
    local_day = func.date(func.timezone(Clinic.time_zone, PaymentRequest.created_at))
    query = (
        select(
            local_day,
            func.count(PaymentRequest.id),
            func.sum(case((settled, 1), else_=0)),
            func.sum(case((settled, PaymentRequest.amount), else_=0)),
            func.sum(case((settled, PaymentRequest.amount_refunded), else_=0)),
        )
        .join(Clinic, Clinic.id == PaymentRequest.clinic_id)
        .where(selected(ledger))
        .group_by(local_day)
    )
    try:
        with db.session.begin_nested():
            days = db.session.execute(query).all()
    except DBAPIError:
        return None
    sums = [sum(int(day[n]) for day in days) for n in (1, 2, 3, 4)]
    amounts = {day: int(gross) for day, _count, paid, gross, _refunded in days if paid}
    return Totals(*sums), amounts
