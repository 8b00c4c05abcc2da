"""What an admin may read of the audit log, and which entries a filter selects.

An organisation admin reads every entry of their organisation (its clinics' included); a
clinic admin only their clinic's. Entries are kept with the organisation and clinic of what
they are about (``record_audit``), so the scope is a condition on those two columns, and
entries about nothing of an organisation (a person signing in) are on nobody's page. Days in
the filter are calendar days on the clocks of the reader's first organisation or clinic.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import false, not_, or_, select, tuple_

from vcpay.audit.models import AuditEntry
from vcpay.clinic_clocks import clinic_zone
from vcpay.extensions import db
from vcpay.inputs import parse_id
from vcpay.ledger.filters import FilterRefused, parse_day
from vcpay.ledger.keyset import Position
from vcpay.people.models import Clinic, Organisation, User
from vcpay.people.permissions import Permission, clinics_where

PAGE_SIZE = 50

# What an entry is about, from its action's name: (label, actions starting with any of the
# first prefixes, unless they start with one of the second).
KINDS: dict[str, tuple[object, tuple[str, ...], tuple[str, ...]]] = {
    "clinic": (_l("Clinics"), ("clinic.",), ("clinic.time_zone",)),
    "request": (_l("Payment Gateway requests"), ("enablement.",), ()),
    "stripe": (_l("Stripe links"), ("stripe.",), ()),
    "payment": (_l("Payments"), ("payment.",), ("payment.refund",)),
    "refund": (_l("Refunds"), ("payment.refund",), ()),
    "person": (
        _l("People"),
        (
            "user.",
            "participant.",
            "people.",
            "person.",
            "invitation.",
            "two_factor.",
            "team.",
            "organisation.telehealth_manager",
        ),
        (),
    ),
    "setting": (_l("Settings"), ("clinic.time_zone", "setting."), ()),
}


@dataclass(frozen=True)
class AuditScope:
    organisations: tuple[Organisation, ...]
    clinics: tuple[Clinic, ...]  # clinics administered outside those organisations

    def __bool__(self) -> bool:
        return bool(self.organisations or self.clinics)

    def condition(self):
        organisation_ids = [o.id for o in self.organisations]
        clinic_ids = [c.id for c in self.clinics]
        if not organisation_ids and not clinic_ids:
            return false()
        return or_(
            AuditEntry.organisation_id.in_(organisation_ids),
            AuditEntry.clinic_id.in_(clinic_ids),
        )

    @property
    def zone(self) -> ZoneInfo:
        return clinic_zone(self.organisations[0] if self.organisations else self.clinics[0])

    @cached_property
    def _places(self) -> tuple[dict[int, Clinic], dict[int, Organisation]]:
        clinics = {c.id: c for o in self.organisations for c in o.clinics}
        clinics.update((c.id, c) for c in self.clinics)
        return clinics, {o.id: o for o in self.organisations}

    def place_of(self, entry) -> Clinic | Organisation:
        """Whose clocks an entry's moment is shown on: its clinic's, else its organisation's."""
        clinics, organisations = self._places
        if entry.clinic_id in clinics:
            return clinics[entry.clinic_id]
        return organisations.get(entry.organisation_id) or self.clinics[0]

    def clinic_name(self, entry) -> str:
        clinics, _organisations = self._places
        clinic = clinics.get(entry.clinic_id)
        return clinic.name if clinic else ""


def audit_scope(user: User) -> AuditScope:
    if not user.is_active:
        return AuditScope((), ())
    organisations = tuple(
        sorted((m.organisation for m in user.organisation_memberships), key=lambda o: o.name)
    )
    mine = {o.id for o in organisations}
    clinics = tuple(
        c for c in clinics_where(user, Permission.VIEW_AUDIT_LOG) if c.organisation_id not in mine
    )
    return AuditScope(organisations, clinics)


@dataclass(frozen=True)
class AuditFilter:
    scope: AuditScope
    person_id: int | None = None
    kind: str = ""
    first_day: date | None = None
    last_day: date | None = None
    args: dict[str, str] = field(default_factory=dict)  # as given, for links and the form

    def conditions(self) -> list:
        wanted = [self.scope.condition()]
        if self.person_id is not None:
            wanted.append(AuditEntry.actor_id == self.person_id)
        if self.kind:
            _label, prefixes, unless = KINDS[self.kind]
            wanted.append(or_(*(AuditEntry.action.startswith(p) for p in prefixes)))
            wanted.extend(not_(AuditEntry.action.startswith(p)) for p in unless)
        if self.first_day is not None:
            wanted.append(AuditEntry.occurred_at >= _start_of(self.first_day, self.scope.zone))
        if self.last_day is not None:
            after_last = self.last_day + timedelta(days=1)
            wanted.append(AuditEntry.occurred_at < _start_of(after_last, self.scope.zone))
        return wanted


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def people_in(scope: AuditScope) -> list[User]:
    """Everyone who did something in the scope, by name, for the person choice."""
    ids = select(AuditEntry.actor_id).where(scope.condition(), AuditEntry.actor_id.is_not(None))
    query = select(User).where(User.id.in_(ids.distinct())).order_by(User.name, User.id)
    return list(db.session.scalars(query))


def read_filter(scope: AuditScope, args, people: list[User]) -> AuditFilter:
    """The filter the query string asks for, or ``FilterRefused`` saying what to change."""
    given = {name: args.get(name, "").strip() for name in ("person", "kind", "from", "to")}
    person_id = None
    if given["person"]:
        person_id = parse_id(given["person"])
        if person_id is None or person_id not in {p.id for p in people}:
            raise FilterRefused(_l("Choose a person from the list."))
    if given["kind"] and given["kind"] not in KINDS:
        raise FilterRefused(_l("Choose a kind from the list."))
    first, last = parse_day(given["from"]), parse_day(given["to"])
    if first and last and first > last:
        raise FilterRefused(_l("The first day comes after the last; swap them and try again."))
    return AuditFilter(
        scope=scope,
        person_id=person_id,
        kind=given["kind"],
        first_day=first,
        last_day=last,
        args={name: value for name, value in given.items() if value},
    )


def entries(audit: AuditFilter, after: Position | None, size: int) -> list[AuditEntry]:
    """Up to ``size`` selected entries after ``after``, newest first, by keyset."""
    query = select(AuditEntry).where(*audit.conditions())
    if after is not None:
        key = tuple_(AuditEntry.occurred_at, AuditEntry.id)
        query = query.where(key < tuple_(after.created_at, after.id))
    query = query.order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc()).limit(size)
    return list(db.session.scalars(query))


def position_of(entry: AuditEntry) -> Position:
    return Position(entry.occurred_at, entry.id)


def kind_of(action: str) -> str:
    """The kind's label of an action, or "" when it is of none."""
    for label, prefixes, unless in KINDS.values():
        if action.startswith(prefixes) and not (unless and action.startswith(unless)):
            return str(label)
    return ""
