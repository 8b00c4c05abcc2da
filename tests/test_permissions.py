"""Who may do what, where: every role against every permission and scope."""

from types import SimpleNamespace

import pytest

from tests import factories
from vcpay.extensions import db
from vcpay.people.demo import CLINICS
from vcpay.people.models import ClinicRole
from vcpay.people.permissions import (
    Permission,
    Role,
    can,
    clinics_where,
    holds_any,
    organisations_where,
    roles_in,
)
from vcpay.people.services import add_clinic_role

P = Permission
ALL = set(Permission)


@pytest.fixture
def world(app):
    demo = factories.organisation("Harbourside Health", *CLINICS)
    gp, physio = demo.clinics
    other = factories.organisation("Riverside Care", "Riverside Dental")
    dental = other.clinics[0]
    people = {
        "manager": factories.org_admin("m@a.example", demo, manager=True),
        "org_admin": factories.org_admin("o@a.example", demo),
        "gp_admin": factories.clinic_person("ca@a.example", gp, ClinicRole.CLINIC_ADMIN),
        "gp_clinician": factories.clinic_person("c@a.example", gp, ClinicRole.CLINICIAN),
        "other_admin": factories.org_admin("o@b.example", other, manager=True),
        "nobody": factories.person("n@a.example"),
    }
    # Someone who administers one clinic, consults in another and works for a second org.
    mixed = factories.clinic_person("mixed@a.example", gp, ClinicRole.CLINIC_ADMIN)
    for clinic, role in ((physio, ClinicRole.CLINICIAN), (dental, ClinicRole.CLINICIAN)):
        add_clinic_role(mixed, clinic, role)
    people["mixed"] = mixed
    db.session.commit()
    places = {"org": demo, "gp": gp, "physio": physio, "other_org": other, "dental": dental}
    # A call (or any object of a clinic) is a scope through its clinic.
    places["gp_call"] = SimpleNamespace(clinic=gp)
    places["dental_call"] = SimpleNamespace(clinic=dental)
    return SimpleNamespace(people=people, places=places)


# Everyone with a role in a clinic opens its Payments page; only admins see all its payments
# (a clinician sees the requests they made) and send receipts again.
PAYMENTS = {P.VIEW_PAYMENTS, P.VIEW_CLINIC_PAYMENTS, P.RESEND_RECEIPT}
CLINIC_ADMIN = {
    P.VIEW_ORGANISATION, P.REQUEST_ENABLEMENT, P.MANAGE_CLIENT_PAYMENTS, P.REFUND_PAYMENT,
    P.VIEW_AUDIT_LOG, P.MANAGE_TEAM, P.RESET_TWO_FACTOR,
} | PAYMENTS  # fmt: skip
# Only organisation admins manage the organisation's own team (clinics, admins, manager).
ORG_ADMIN = CLINIC_ADMIN | {P.MANAGE_ORGANISATION_TEAM}
CLINICIAN = {P.VIEW_ORGANISATION, P.START_CALL, P.VIEW_PAYMENTS}

# person, scope, the permissions they hold there (every other permission is refused).
TABLE = [
    ("manager", "org", ORG_ADMIN | {P.ENDORSE_ENABLEMENT}),
    ("manager", "gp", ORG_ADMIN | {P.ENDORSE_ENABLEMENT}),
    ("manager", "gp_call", ORG_ADMIN | {P.ENDORSE_ENABLEMENT}),
    ("manager", "other_org", set()),
    ("manager", "dental", set()),
    ("org_admin", "org", ORG_ADMIN),
    ("org_admin", "physio", ORG_ADMIN),
    ("org_admin", "other_org", set()),
    ("gp_admin", "gp", CLINIC_ADMIN),
    ("gp_admin", "gp_call", CLINIC_ADMIN),
    ("gp_admin", "org", CLINIC_ADMIN),
    ("gp_admin", "physio", set()),
    ("gp_admin", "dental_call", set()),
    ("gp_clinician", "gp", CLINICIAN),
    ("gp_clinician", "gp_call", CLINICIAN),
    ("gp_clinician", "physio", set()),
    ("gp_clinician", "other_org", set()),
    ("other_admin", "dental", ORG_ADMIN | {P.ENDORSE_ENABLEMENT}),
    ("other_admin", "gp", set()),
    ("other_admin", "org", set()),
    ("mixed", "gp", CLINIC_ADMIN),
    ("mixed", "physio", CLINICIAN),
    ("mixed", "dental", CLINICIAN),
    ("mixed", "other_org", CLINICIAN),
    ("nobody", "org", set()),
    ("nobody", "gp", set()),
]


@pytest.mark.parametrize(("person", "scope", "granted"), TABLE)
def test_permission_table(world, person, scope, granted):
    user, place = world.people[person], world.places[scope]
    held = {permission for permission in Permission if can(user, permission, place)}
    assert held == granted


def test_a_disabled_user_holds_nothing(world):
    manager = world.people["manager"]
    manager.is_disabled = True
    assert roles_in(manager, world.places["org"]) == set()
    assert not any(can(manager, p, world.places["gp"]) for p in Permission)


def test_clinics_where_lists_every_clinic_in_scope_and_no_other(world):
    names = lambda clinics: [c.name for c in clinics]  # noqa: E731
    people = world.people
    assert names(clinics_where(people["manager"], P.MANAGE_CLIENT_PAYMENTS)) == list(CLINICS)
    assert names(clinics_where(people["gp_admin"], P.MANAGE_CLIENT_PAYMENTS)) == [CLINICS[0]]
    assert names(clinics_where(people["gp_clinician"], P.MANAGE_CLIENT_PAYMENTS)) == []
    assert names(clinics_where(people["mixed"], P.START_CALL)) == [
        CLINICS[1],
        "Riverside Dental",
    ]
    assert [o.name for o in organisations_where(people["mixed"], P.VIEW_ORGANISATION)] == [
        "Harbourside Health",
        "Riverside Care",
    ]


def test_holds_any_drives_navigation(world):
    people = world.people
    admins = {Role.ORGANISATION_ADMIN, Role.CLINIC_ADMIN}
    assert holds_any(people["org_admin"], admins)
    assert holds_any(people["gp_admin"], admins)
    assert not holds_any(people["gp_clinician"], admins)
    assert holds_any(people["gp_clinician"], {Role.CLINICIAN})
    assert not holds_any(people["nobody"], set(Role))
