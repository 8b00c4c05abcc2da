"""Domain operations on people: passwords, sign-in checks, memberships."""

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
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

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a miss costs as long as a wrong password.
_UNKNOWN_USER_HASH = _hasher.hash("no user has this password")


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _password_matches(user: User | None, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash if user else _UNKNOWN_USER_HASH, password)
    except (VerificationError, InvalidHashError):
        return False


def find_user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def authenticate(email: str, password: str) -> User | None:
    """The active user with this email and password, or None whatever the reason."""
    user = find_user_by_email(email)
    if not _password_matches(user, password) or user is None or user.is_disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_signed_in_at = utcnow()
    return user


def create_user(  # nosec B107  # empty: hash the password given
    email: str, name: str, password: str, phone: str | None = None, password_hash: str = ""
) -> User:
    """A new user; ``password_hash`` may carry a hash of ``password`` made earlier."""
    user = User(
        email=normalise_email(email),
        name=name,
        phone=phone,
        password_hash=password_hash or hash_password(password),
    )
    db.session.add(user)
    return user


def add_organisation_admin(
    user: User, organisation: Organisation, telehealth_manager: bool = False
) -> OrganisationMembership:
    membership = OrganisationMembership(
        user=user, organisation=organisation, is_telehealth_manager=telehealth_manager
    )
    db.session.add(membership)
    return membership


def add_clinic_role(user: User, clinic: Clinic, role: ClinicRole) -> ClinicMembership:
    membership = ClinicMembership(user=user, clinic=clinic, role=role.value)
    db.session.add(membership)
    return membership
