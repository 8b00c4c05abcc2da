"""Domain operations on people: passwords, sign-in checks and sessions, memberships."""

import hashlib
import secrets
from datetime import timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.people.models import (
    Clinic,
    ClinicMembership,
    ClinicRole,
    Organisation,
    OrganisationMembership,
    SignInSession,
    User,
)

_hasher = PasswordHasher()
# How often a live sign-in's "last seen" is written: often enough to tell (and to time an idle
# admin out), rarely enough that pages do not write on every load.
SEEN_EVERY = timedelta(minutes=1)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@cache
def _unknown_user_hash() -> str:
    """Verified against when the email is unknown, so a miss costs as long as a wrong password.
    Made at the first use: hashing is slow on purpose, and every process imports this."""
    return _hasher.hash("no user has this password")


def _password_matches(user: User | None, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash if user else _unknown_user_hash(), password)
    except (VerificationError, InvalidHashError):
        return False


def password_matches(user: User, password: str) -> bool:
    return _password_matches(user, password)


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


def set_password(user: User, password: str, keep: SignInSession | None = None) -> None:
    """A new password ends every sign-in of ``user`` but ``keep`` (the browser that set it)."""
    user.password_hash = hash_password(password)
    revoke_all_sign_in_sessions(user, keep=keep)


def disable_user(user: User) -> None:
    """The person can no longer sign in, and every browser they are signed in on is signed out."""
    user.is_disabled = True
    revoke_all_sign_in_sessions(user)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_sign_in_session(
    user: User, lifetime: timedelta, user_agent: str = "", address: str = ""
) -> tuple[SignInSession, str]:
    """A new sign-in and the random id the browser keeps; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    sign_in = SignInSession(
        user=user,
        token_hash=_token_hash(token),
        created_at=now,
        expires_at=now + lifetime,
        last_seen_at=now,
        user_agent=user_agent.replace("\x00", "")[:400] or None,
        address=address[:45] or None,
    )
    db.session.add(sign_in)
    db.session.flush()
    return sign_in, token


def _live():
    return (SignInSession.revoked_at.is_(None), SignInSession.expires_at > utcnow())


def find_live_sign_in_session(token: str | None, user_id: int) -> SignInSession | None:
    """The unrevoked, unexpired sign-in of ``user_id`` that ``token`` names, if any."""
    if not token:
        return None
    return db.session.scalar(
        select(SignInSession)
        .options(joinedload(SignInSession.user))
        .where(
            SignInSession.token_hash == _token_hash(token),
            SignInSession.user_id == user_id,
            *_live(),
        )
    )


def sign_in_session_is_live(sign_in_id: int) -> bool:
    found = db.session.scalar(
        select(SignInSession.id).where(SignInSession.id == sign_in_id, *_live())
    )
    return found is not None


def live_sign_in_sessions(user: User) -> list[SignInSession]:
    """The person's live sign-ins, the most recently seen first."""
    return list(
        db.session.scalars(
            select(SignInSession)
            .where(SignInSession.user_id == user.id, *_live())
            .order_by(SignInSession.last_seen_at.desc(), SignInSession.id.desc())
        )
    )


def own_live_sign_in_session(user: User, sign_in_id: int) -> SignInSession | None:
    """One of the person's own live sign-ins; anyone else's (or an ended one) is None."""
    return db.session.scalar(
        select(SignInSession).where(
            SignInSession.id == sign_in_id, SignInSession.user_id == user.id, *_live()
        )
    )


def has_been_idle(sign_in: SignInSession, limit: timedelta) -> bool:
    """No page for longer than ``limit`` (give or take ``SEEN_EVERY``, how often it is noted)."""
    return utcnow() - sign_in.last_seen_at > limit


def note_sign_in_session_seen(sign_in: SignInSession) -> bool:
    """Records that the sign-in is in use, at most every ``SEEN_EVERY``; True if it wrote."""
    now = utcnow()
    if now - sign_in.last_seen_at < SEEN_EVERY:
        return False
    sign_in.last_seen_at = now
    db.session.flush()
    return True


def revoke_sign_in_session(sign_in: SignInSession) -> None:
    if sign_in.revoked_at is None:
        sign_in.revoked_at = utcnow()
        db.session.flush()


def revoke_all_sign_in_sessions(user: User, keep: SignInSession | None = None) -> int:
    """Signs ``user`` out of every browser (but ``keep``); how many sign-ins it ended."""
    ended = update(SignInSession).where(
        SignInSession.user_id == user.id, SignInSession.revoked_at.is_(None)
    )
    if keep is not None:
        ended = ended.where(SignInSession.id != keep.id)
    return db.session.execute(ended.values(revoked_at=utcnow())).rowcount


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
