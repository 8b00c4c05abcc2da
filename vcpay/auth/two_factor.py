"""Two-factor sign-in: a time-based code (TOTP, RFC 6238) from an app, or a recovery code.

A person's secret is kept in their row and shown only while they enrol (as a QR code and as
text). A code is accepted once: the time-step it was made for is remembered, and a code of
the same or an earlier step is refused (a guarded update, so two requests at once cannot both
use it). Ten recovery codes are shown once when two-factor is turned on (and when they are
made again); only a keyed hash of each is stored, and each is spent by a guarded update.

Admins must use it (``is_required``); anyone else may. The demo's people are exempt, and only
on the local demo (vcpay.config.is_local_demo): a production instance exempts nobody.

Between the right password and the code, the browser holds a signed marker (``MARKER_KEY`` in
its session) naming the person, a keyed fingerprint of their password hash and the moment the
password was checked. It is good for ``MARKER_SECONDS``, no longer once the password changes,
and no longer once it has been used to sign in (signing in moves ``last_signed_in_at``).
"""

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import pyotp
import qrcode
import qrcode.image.svg
from flask import current_app, session
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import delete, func, or_, select, update

from vcpay.config import is_local_demo
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.people.models import RecoveryCode, User
from vcpay.people.permissions import ADMINS, holds_any
from vcpay.people.services import revoke_all_sign_in_sessions

ISSUER = "vcpay"
RECOVERY_CODES = 10
# Unambiguous letters and digits (no 0/o, 1/l/i): ten of them, shown as "abcde-fghjk".
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 10
MARKER_KEY = "two_factor"
MARKER_SECONDS = 300
# While enrolling: the secret offered, until a code made from it is confirmed.
ENROL_KEY = "two_factor_enrol"
# The recovery codes just made, until the page showing them (once) is opened.
SHOW_CODES_KEY = "two_factor_codes"
# Codes of the step before and after now are accepted too: a phone's clock may be off a little.
DRIFT_STEPS = 1

CODE = re.compile(r"[0-9]{6}", re.ASCII)
RECOVERY = re.compile(r"[a-z0-9]{10}", re.ASCII)


def is_exempt(user: User) -> bool:
    return user.two_factor_exempt and is_local_demo(current_app.config)


def is_required(user: User) -> bool:
    """Admins must sign in with a second factor (but the demo's people on the local demo)."""
    return holds_any(user, ADMINS) and not is_exempt(user)


def must_enrol(user: User) -> bool:
    return is_required(user) and not user.two_factor_enabled


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def qr_code_svg(uri: str) -> str:
    """The QR code of ``uri`` as inline SVG markup, drawn on the server (no image library)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return image.to_string(encoding="unicode")


def enrolment(user: User, secret: str) -> dict:
    """What the enrolment page shows: the QR code, and the secret to type instead."""
    uri = provisioning_uri(user, secret)
    spaced = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return {"qr_svg": qr_code_svg(uri), "secret": spaced}


def _typed(code: str) -> str:
    return (code or "").replace(" ", "").replace("-", "").strip().lower()


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time-step ``code`` was made for with ``secret``, near now; None if it matches none."""
    typed = _typed(code)
    if not CODE.fullmatch(typed):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now if now is not None else time.time())
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), typed):
            return step
    return None


def _accept_step(user: User, step: int) -> bool:
    """Records ``step`` as the person's last accepted one, unless it (or a later one) was."""
    accepted = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            or_(User.two_factor_last_step.is_(None), User.two_factor_last_step < step),
        )
        .values(two_factor_last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.expire(user, ["two_factor_last_step"])
    return accepted == 1


def accept_code(user: User, code: str) -> bool:
    """A code from the person's app, never accepted before: True once, then spent."""
    if not user.two_factor_enabled:
        return False
    step = matching_step(user.two_factor_secret, code)
    return step is not None and _accept_step(user, step)


def _recovery_hash(code: str) -> str:
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, b"recovery-code:" + code.encode(), hashlib.sha256).hexdigest()


def _new_recovery_code() -> str:
    return "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))


def shown(code: str) -> str:
    return f"{code[:5]}-{code[5:]}"


def make_recovery_codes(user: User) -> list[str]:
    """Ten new recovery codes for ``user`` (the old ones stop working), to show once."""
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(c)) for c in codes)
    db.session.flush()
    return [shown(code) for code in codes]


def recovery_codes_left(user: User) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )


def use_recovery_code(user: User, code: str) -> bool:
    """Spends one of the person's unused recovery codes: True once per code."""
    typed = _typed(code)
    if not user.two_factor_enabled or not RECOVERY.fullmatch(typed):
        return False
    spent = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _recovery_hash(typed),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    return spent == 1


@dataclass(frozen=True)
class SecondFactor:
    """What a person typed at the second step, and what it was."""

    accepted: bool
    recovery_code: bool = False


def check_second_factor(user: User, code: str) -> SecondFactor:
    if accept_code(user, code):
        return SecondFactor(True)
    if use_recovery_code(user, code):
        return SecondFactor(True, recovery_code=True)
    return SecondFactor(False)


def turn_on(user: User, secret: str, code: str) -> list[str] | None:
    """Turns two-factor on with the ``secret`` the person was shown, if ``code`` was made from
    it; the new recovery codes, or None (a wrong code, or turned on meanwhile)."""
    step = matching_step(secret, code)
    if step is None:
        return None
    turned_on = db.session.execute(
        update(User)
        .where(User.id == user.id, User.two_factor_enabled_at.is_(None))
        .values(two_factor_secret=secret, two_factor_enabled_at=utcnow(), two_factor_last_step=step)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.expire(user, ["two_factor_secret", "two_factor_enabled_at", "two_factor_last_step"])
    if turned_on != 1:
        return None
    return make_recovery_codes(user)


def turn_off(user: User) -> None:
    """No more second factor for ``user``: the secret and the recovery codes are gone."""
    user.two_factor_secret = None
    user.two_factor_enabled_at = None
    user.two_factor_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.flush()


def reset(user: User) -> int:
    """An admin's reset: two-factor off and every sign-in of ``user`` ended (how many)."""
    turn_off(user)
    return revoke_all_sign_in_sessions(user)


# The marker between the password and the code.
def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="vcpay.two-factor")


def _fingerprint(user: User) -> str:
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, b"two-factor:" + user.password_hash.encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def _moment(user: User) -> str:
    return user.last_signed_in_at.isoformat() if user.last_signed_in_at else ""


def mark_password_passed(user: User, next_page: str) -> None:
    """After the right password: the browser may go on to the second step, for a while."""
    session.pop(ENROL_KEY, None)
    session[MARKER_KEY] = _serializer().dumps(
        {"user": user.id, "password": _fingerprint(user), "at": _moment(user), "next": next_page}
    )


def marked_user_id() -> int | None:
    """Whose marker this browser holds, signature checked but nothing else: for limiter keys."""
    try:
        data = _serializer().loads(session.get(MARKER_KEY, ""))
    except BadData:
        return None
    user_id = data.get("user") if isinstance(data, dict) else None
    return user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None


@dataclass(frozen=True)
class PasswordPassed:
    user: User
    next_page: str


def password_passed() -> PasswordPassed | None:
    """The person whose password this browser gave in the last ``MARKER_SECONDS``, while the
    password is unchanged and the marker unused; else None."""
    token = session.get(MARKER_KEY)
    if not isinstance(token, str):
        return None
    try:
        data = _serializer().loads(token, max_age=MARKER_SECONDS)
    except BadData:  # forged, altered or too old
        return None
    user_id = marked_user_id()
    if user_id is None or not 0 < user_id < 2**63:
        return None
    user = db.session.get(User, user_id)
    if user is None or user.is_disabled:
        return None
    if not hmac.compare_digest(str(data.get("password", "")), _fingerprint(user)):
        return None  # the password changed since
    if not hmac.compare_digest(str(data.get("at", "")), _moment(user)):
        return None  # signed in with it already, or the password was given again since
    next_page = data.get("next")
    return PasswordPassed(user, next_page if isinstance(next_page, str) else "")


def forget_marker() -> None:
    session.pop(MARKER_KEY, None)
    session.pop(ENROL_KEY, None)


def note_signed_in(user: User) -> None:
    """The second step is done: moving the sign-in moment spends every marker of the person."""
    user.last_signed_in_at = utcnow()
    db.session.flush()
