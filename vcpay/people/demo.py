"""Demo data: one organisation, two clinics and one person per role.

Seeding is idempotent: running it again finds what exists and adds only what is missing,
so ``make run`` can call it on every start.
"""

from dataclasses import dataclass
from functools import cache

from sqlalchemy import select

from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.people.models import (
    Clinic,
    ClinicMembership,
    ClinicRole,
    Organisation,
    OrganisationMembership,
    User,
)
from vcpay.people.services import (
    add_clinic_role,
    add_organisation_admin,
    create_user,
    find_user_by_email,
    hash_password,
)

DEMO_PASSWORD = "vcpay-demo-2026"  # noqa: S105  # nosec B105  # documented demo credential
ORGANISATION = "Harbourside Health"
CLINICS = ("Harbourside GP Clinic", "Harbourside Physiotherapy")


@dataclass(frozen=True)
class DemoPerson:
    email: str
    name: str
    role: str


DEMO_PEOPLE = (
    DemoPerson(
        "manager@harbourside.example", "Morgan Lee", "Organisation admin, telehealth manager"
    ),
    DemoPerson("orgadmin@harbourside.example", "Alex Chen", "Organisation admin"),
    DemoPerson("clinicadmin@harbourside.example", "Sam Patel", "Clinic admin, GP Clinic"),
    DemoPerson("clinician@harbourside.example", "Dr Jordan Rivers", "Clinician, GP Clinic"),
)


def _organisation() -> Organisation:
    organisation = db.session.scalar(select(Organisation).where(Organisation.name == ORGANISATION))
    if organisation is None:
        organisation = Organisation(name=ORGANISATION)
        db.session.add(organisation)
    return organisation


def _clinic(organisation: Organisation, name: str) -> Clinic:
    for clinic in organisation.clinics:
        if clinic.name == name:
            return clinic
    clinic = Clinic(organisation=organisation, name=name)
    db.session.add(clinic)
    return clinic


@cache
def _demo_password_hash() -> str:
    # Hashing is slow on purpose; the demo people share one documented password.
    return hash_password(DEMO_PASSWORD)


def _user(person: DemoPerson) -> User:
    user = find_user_by_email(person.email)
    if user is None:
        user = create_user(
            person.email,
            person.name,
            DEMO_PASSWORD,
            phone="+61 2 5550 0100",
            password_hash=_demo_password_hash(),
        )
    # The demo's people sign in with the shared password alone; only the local demo honours
    # this (vcpay/auth/two_factor.py), so a production instance still asks its admins.
    user.two_factor_exempt = True
    return user


def _ensure_org_admin(user: User, organisation: Organisation, manager: bool) -> None:
    existing = db.session.scalar(
        select(OrganisationMembership).filter_by(user=user, organisation=organisation)
    )
    if existing is None:
        add_organisation_admin(user, organisation, telehealth_manager=manager)


def _ensure_clinic_role(user: User, clinic: Clinic, role: ClinicRole) -> None:
    existing = db.session.scalar(
        select(ClinicMembership).filter_by(user=user, clinic=clinic, role=role.value)
    )
    if existing is None:
        add_clinic_role(user, clinic, role)


def seed_demo(enable_gateway: bool = False) -> Organisation:
    """Create or complete the demo organisation; the caller commits.

    ``enable_gateway`` switches the Payment Gateway on for the GP clinic, as an approved
    request would, so the demo can link Stripe and take payments straight away.
    """
    organisation = _organisation()
    gp_clinic, _physio = (_clinic(organisation, name) for name in CLINICS)
    db.session.flush()
    manager, org_admin, clinic_admin, clinician = (_user(p) for p in DEMO_PEOPLE)
    db.session.flush()
    _ensure_org_admin(manager, organisation, manager=True)
    _ensure_org_admin(org_admin, organisation, manager=False)
    _ensure_clinic_role(clinic_admin, gp_clinic, ClinicRole.CLINIC_ADMIN)
    _ensure_clinic_role(clinician, gp_clinic, ClinicRole.CLINICIAN)
    if enable_gateway and gp_clinic.gateway_enabled_at is None:
        gp_clinic.gateway_enabled_at = utcnow()
    db.session.flush()
    return organisation
