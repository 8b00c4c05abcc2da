"""Choosing, changing and resetting a password.

The rules are NIST SP 800-63B's: at least ``MIN_LENGTH`` characters, not a common password
(the list shipped beside this module, nor one of them with digits or symbols added at the
end, nor one character or a short run of them repeated), and no composition rules.

A reset link carries a signed, timed token (itsdangerous, its own salt) naming the person and
a keyed fingerprint of their password hash. It is good for ``RESET_SECONDS``; it is used up by
the reset it makes, since the new password changes the hash, and the reset is a guarded update
(only while the hash is still the one the token names), so two uses at once cannot both win.
Every sign-in of the person ends with a new password.
"""

import hashlib
import hmac
import secrets
from functools import cache
from importlib.resources import files

from flask import current_app
from flask_babel import lazy_gettext as _l
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import update

from vcpay.audit.services import record_audit
from vcpay.extensions import db
from vcpay.mail.services import queue_email
from vcpay.people.models import SignInSession, User
from vcpay.people.services import (
    find_user_by_email,
    hash_password,
    revoke_all_sign_in_sessions,
)
from vcpay.public_urls import public_url_for

MIN_LENGTH = 12
RESET_SECONDS = 3600
SALT = "vcpay.password-reset"

TOO_SHORT = _l("Use at least %(count)s characters.", count=MIN_LENGTH)
TOO_COMMON = _l(
    "That password is one of the most common ones, or close to one. Choose another: a few "
    "unrelated words make a long password that is easy to remember."
)


@cache
def common_passwords() -> frozenset[str]:
    text = files("vcpay.auth").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line and not line.startswith("#")
    )


def _is_repetition(password: str) -> bool:
    """One character, or a run of up to four, repeated: "aaaaaaaaaaaa", "abcabcabcabc"."""
    return any(
        len(password) % size == 0 and password == password[:size] * (len(password) // size)
        for size in range(1, 5)
    )


def password_problem(password: str) -> str | None:
    """Why ``password`` may not be chosen, in words for the person; None when it may."""
    if len(password) < MIN_LENGTH:
        return str(TOO_SHORT)
    lowered = password.lower()
    common = common_passwords()
    stem = lowered.rstrip("0123456789!@#$%^&*?.,-_+=~ ")
    if lowered in common or (stem and stem in common) or _is_repetition(lowered):
        return str(TOO_COMMON)
    return None


def _fingerprint(user: User) -> str:
    """Names the password the person has now, without revealing anything of it."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, b"reset:" + user.password_hash.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def reset_token(user: User) -> str:
    return _serializer().dumps({"user": user.id, "password": _fingerprint(user)})


def user_for_reset_token(token: str) -> User | None:
    """The active person a reset token is for, while it is unexpired and unused; else None."""
    try:
        data = _serializer().loads(token, max_age=RESET_SECONDS)
    except BadData:  # forged, altered or expired
        return None
    if not isinstance(data, dict) or not isinstance(data.get("user"), int):
        return None
    if isinstance(data["user"], bool) or not 0 < data["user"] < 2**63:
        return None
    user = db.session.get(User, data["user"])
    if user is None or user.is_disabled:
        return None
    if not hmac.compare_digest(str(data.get("password", "")), _fingerprint(user)):
        return None  # the password changed since: the link is used up
    return user


def ask_for_reset(email: str) -> None:
    """Emails a reset link to the active person with ``email``; nothing for anyone else. The
    caller commits, and answers the same whichever it was."""
    user = find_user_by_email(email)
    if user is None or user.is_disabled:
        return
    link = public_url_for("auth.reset_password", token=reset_token(user))
    queue_email(
        f"password-reset:{user.id}:{secrets.token_hex(8)}",
        user.email,
        _l("Reset your vcpay password"),
        "password_reset",
        name=user.name,
        link=link,
        minutes=RESET_SECONDS // 60,
    )
    # Not the person's own act: anyone may type their address.
    record_audit("user.password_reset_asked", user)


def reset_password(user: User, new_password: str) -> bool:
    """Sets the password a reset link was for, once: False when the password changed since the
    link was checked (the link was used, here or in another request). Ends every sign-in."""
    changed = db.session.execute(
        update(User)
        .where(User.id == user.id, User.password_hash == user.password_hash)
        .values(password_hash=hash_password(new_password))
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        return False
    db.session.expire(user, ["password_hash"])
    revoke_all_sign_in_sessions(user)
    record_audit("user.password_reset", user, actor=user)
    return True


def change_password(user: User, new_password: str, keep: SignInSession | None) -> None:
    """The signed-in person's new password; every other browser of theirs is signed out."""
    user.password_hash = hash_password(new_password)
    revoke_all_sign_in_sessions(user, keep=keep)
    record_audit("user.password_changed", user, actor=user)
    db.session.flush()
