"""What the Payments page is asked to show, read from its query string and checked.

Opened with no dates at all (from the navigation, a bookmark), the page shows the last 30
days: their totals and chart are a read of a month's rows, not of every row the clinic ever
had, and a clinic admin opening it mostly wants the recent ones. Dates left empty in the form
mean no limit, so every payment is a click away; the dates in force are always in the form.

Whose rows: every clinic where the person may open the Payments page; in each, every
payment if they administer it, else only the requests they made. Days are calendar days in
each row's own clinic's time zone: "1 March" is 1 March in Sydney for a Sydney clinic and in
Perth for a Perth clinic, so a filter over two clinics in different zones still counts each
payment on the day its clinic does.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from vcpay.client_payments.models import LinkState, StripeLink
from vcpay.clinic_clocks import clinic_zone
from vcpay.extensions import db
from vcpay.inputs import parse_id
from vcpay.ledger import keyset
from vcpay.ledger.keyset import Position
from vcpay.payments.models import OPEN_STATES, SETTLED_STATES, PaymentState
from vcpay.people.models import Clinic, User
from vcpay.people.permissions import Permission, can, clinics_where, require

DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
EARLIEST_DAY, LATEST_DAY = date(2000, 1, 1), date(2999, 12, 31)
SEARCH_MAX = 200
RECENT_DAYS = 30  # what the page shows when it is given no dates

# Groups first, then each state on its own; the value is what the query string carries.
STATUS_CHOICES: dict[str, tuple[object, frozenset[str]]] = {
    "settled": (_l("Paid (including refunded)"), frozenset(SETTLED_STATES)),
    "open": (_l("Waiting for the patient"), frozenset(OPEN_STATES)),
    "any_refund": (
        _l("Refunded, in part or in full"),
        frozenset({PaymentState.PARTIALLY_REFUNDED, PaymentState.REFUNDED}),
    ),
    "unpaid": (
        _l("Closed unpaid (failed, cancelled, expired)"),
        frozenset({PaymentState.FAILED, PaymentState.CANCELLED, PaymentState.EXPIRED}),
    ),
    PaymentState.REQUESTED.value: (_l("Requested"), frozenset({PaymentState.REQUESTED})),
    PaymentState.PROCESSING.value: (_l("Processing"), frozenset({PaymentState.PROCESSING})),
    PaymentState.PAID.value: (_l("Paid"), frozenset({PaymentState.PAID})),
    PaymentState.PARTIALLY_REFUNDED.value: (
        _l("Partly refunded"),
        frozenset({PaymentState.PARTIALLY_REFUNDED}),
    ),
    PaymentState.REFUNDED.value: (_l("Refunded"), frozenset({PaymentState.REFUNDED})),
    PaymentState.FAILED.value: (_l("Payment failed"), frozenset({PaymentState.FAILED})),
    PaymentState.CANCELLED.value: (_l("Cancelled"), frozenset({PaymentState.CANCELLED})),
    PaymentState.EXPIRED.value: (_l("Expired, not paid"), frozenset({PaymentState.EXPIRED})),
}


class FilterRefused(ValueError):
    def __init__(self, message):
        super().__init__(str(message))
        self.message = str(message)


@dataclass(frozen=True)
class ClinicView:
    """One clinic's share of the rows: all of them, or only those ``own_of`` requested."""

    clinic: Clinic
    own_of: int | None

    @property
    def zone(self) -> ZoneInfo:
        return clinic_zone(self.clinic)

    def day_bounds(self, first: date | None, last: date | None):
        """The UTC instants where ``first`` begins and the day after ``last`` begins here."""
        after_last = last + timedelta(days=1) if last is not None else None
        return _start_of(first, self.zone), _start_of(after_last, self.zone)


@dataclass(frozen=True)
class LedgerFilter:
    views: tuple[ClinicView, ...]
    first_day: date | None = None
    last_day: date | None = None
    status: str = ""
    clinician_id: int | None = None
    search: str = ""
    clinic_id: int | None = None  # the clinic chosen, if one was
    account: str = ""  # the Stripe account the requests were made on, if one was chosen
    args: dict[str, str] = field(default_factory=dict)  # as given, for links and the form
    recent: bool = False  # no dates were given: the last 30 days are shown

    @property
    def states(self) -> frozenset[str] | None:
        return STATUS_CHOICES[self.status][1] if self.status else None


def _start_of(day: date | None, zone: ZoneInfo) -> datetime | None:
    if day is None:
        return None
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def today_in(views) -> date:
    """Today in the first clinic's zone (the default zone when there is none)."""
    if views:
        zone = clinic_zone(views[0].clinic)
    else:
        zone = ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])
    return datetime.now(zone).date()


def visible_clinics(user: User) -> list[ClinicView]:
    return [
        ClinicView(clinic, None if can(user, Permission.VIEW_CLINIC_PAYMENTS, clinic) else user.id)
        for clinic in clinics_where(user, Permission.VIEW_PAYMENTS)
    ]


def read_filter(user: User, args) -> LedgerFilter:
    """The filter the query string asks for, or ``FilterRefused`` saying what to change; a
    clinic of another organisation is a 404, like its pages."""
    given = {name: args.get(name, "").strip() for name in ("clinic", "from", "to", "status")}
    given |= {"clinician": args.get("clinician", "").strip(), "q": args.get("q", "").strip()}
    given["account"] = args.get("account", "").strip()
    views = visible_clinics(user)
    clinic_id = _chosen_clinic(given["clinic"])
    if clinic_id is not None:
        views = [v for v in views if v.clinic.id == clinic_id]
        if not views:
            require(Permission.VIEW_PAYMENTS, db.session.get(Clinic, clinic_id))
    first, last = parse_day(given["from"]), parse_day(given["to"])
    if first and last and first > last:
        raise FilterRefused(_l("The first day comes after the last; swap them and try again."))
    recent = "from" not in args and "to" not in args
    if recent:
        last = today_in(views)
        first = last - timedelta(days=RECENT_DAYS - 1)
    # The dates are always in the links, empty for no limit, so that every page of a
    # selection and its export keep the days its first page showed.
    dates = {"from": first.isoformat() if first else "", "to": last.isoformat() if last else ""}
    return LedgerFilter(
        views=tuple(views),
        first_day=first,
        last_day=last,
        status=_status(given["status"]),
        clinician_id=_clinician(given["clinician"]),
        search=_search(given["q"]),
        clinic_id=clinic_id,
        account=_account(given["account"], views),
        args={name: value for name, value in given.items() if value} | dates,
        recent=recent,
    )


def _chosen_clinic(text: str) -> int | None:
    if not text:
        return None
    clinic_id = parse_id(text)
    if clinic_id is None:
        raise FilterRefused(_l("Choose a clinic from the list."))
    return clinic_id


def parse_day(text: str) -> date | None:
    """A day typed as year-month-day, or None when empty; ``FilterRefused`` otherwise."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text) if DAY.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None or not EARLIEST_DAY <= day <= LATEST_DAY:
        raise FilterRefused(_l("Enter dates as year-month-day, for example 2026-03-01."))
    return day


def page_position(cursor: str) -> Position | None:
    """Where a page link starts, or None for the first page; an edited or cut-short link is
    ``FilterRefused``."""
    if not cursor:
        return None
    try:
        return keyset.decode(cursor)
    except keyset.CursorInvalid:
        raise FilterRefused(
            _l(
                "This page link is not valid (it may have been cut short); "
                "start from the first page."
            )
        ) from None


def _status(text: str) -> str:
    if text and text not in STATUS_CHOICES:
        raise FilterRefused(_l("Choose a status from the list."))
    return text


def _clinician(text: str) -> int | None:
    if not text:
        return None
    clinician_id = parse_id(text)
    if clinician_id is None:
        raise FilterRefused(_l("Choose a clinician from the list."))
    return clinician_id


@dataclass(frozen=True)
class AccountChoice:
    account_id: str
    label: str


def accounts_of(views) -> list[AccountChoice]:
    """The Stripe accounts the clinics' requests may have been made on, named as their
    links are (removed links too: their payments stay in the list), live ones first."""
    clinic_ids = [view.clinic.id for view in views]
    if not clinic_ids:
        return []
    links = db.session.scalars(
        select(StripeLink)
        .where(StripeLink.clinic_id.in_(clinic_ids))
        .order_by((StripeLink.state == LinkState.LINKED.value).desc(), StripeLink.id)
    )
    choices: dict[str, AccountChoice] = {}
    for link in links:
        choices.setdefault(link.account_id, AccountChoice(link.account_id, link.label))
    return list(choices.values())


def _account(text: str, views) -> str:
    """An account of the clinics shown, or ``FilterRefused``: an account of a clinic the
    person does not see is refused the same way as one that does not exist."""
    if not text:
        return ""
    if text not in {choice.account_id for choice in accounts_of(views)}:
        raise FilterRefused(_l("Choose an account from the list."))
    return text


def _search(text: str) -> str:
    if len(text) > SEARCH_MAX:
        raise FilterRefused(_l("Search for at most 200 characters."))
    return text
