"""Small builders for people and places, bound to the test's database session."""

from vcpay.extensions import db
from vcpay.people.models import Clinic, ClinicRole, Organisation, User
from vcpay.people.services import (
    add_clinic_role,
    add_organisation_admin,
    create_user,
    hash_password,
)

PASSWORD = "correct horse battery staple"
# Hashing is slow by design; every test person shares one hash made once.
PASSWORD_HASH = hash_password(PASSWORD)


def organisation(name: str, *clinic_names: str) -> Organisation:
    org = Organisation(name=name)
    db.session.add(org)
    for clinic_name in clinic_names:
        db.session.add(Clinic(organisation=org, name=clinic_name))
    db.session.flush()
    return org


def person(email: str, name: str | None = None, two_factor_exempt: bool = True, **kwargs) -> User:
    """A test person. Like the demo's people, they are exempt from two-factor sign-in by
    default, so the many tests that sign an admin in with a password alone still can: the
    test app counts as the local demo, the only place the exemption is honoured. Tests of
    two-factor itself (tests/test_two_factor.py) pass ``two_factor_exempt=False``."""
    user = create_user(
        email, name or email.split("@")[0].title(), PASSWORD, password_hash=PASSWORD_HASH, **kwargs
    )
    user.two_factor_exempt = two_factor_exempt
    db.session.flush()
    return user


def org_admin(
    email: str, org: Organisation, manager: bool = False, two_factor_exempt: bool = True
) -> User:
    user = person(email, two_factor_exempt=two_factor_exempt)
    add_organisation_admin(user, org, telehealth_manager=manager)
    db.session.flush()
    return user


def clinic_person(
    email: str, clinic: Clinic, role: ClinicRole, two_factor_exempt: bool = True
) -> User:
    user = person(email, two_factor_exempt=two_factor_exempt)
    add_clinic_role(user, clinic, role)
    db.session.flush()
    return user
