"""Sign-in throttling that an attacker cannot turn against an account's owner.

Only refused attempts count, against four limits:

- per address (``LOGIN_RATE_LIMIT``): one address guessing across accounts;
- per account and address (``LOGIN_ACCOUNT_RATE_LIMIT``): one address guessing one account,
  which stops nobody elsewhere;
- per account, from browsers that never signed in to it (``LOGIN_NEW_DEVICE_RATE_LIMIT``): a
  spray from many addresses. A browser holding a "known device" cookie for the account (OWASP's
  device cookies) is exempt, so the owner's usual browser still gets in with the password;
- per account and known device (``LOGIN_ACCOUNT_RATE_LIMIT``), so a copied device cookie is
  no way round the limits.

Accounts appear in limiter keys and device cookies only as a keyed digest of the email.
"""

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import Response, current_app, g, request, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from flask_login import current_user
from itsdangerous import BadData, URLSafeTimedSerializer

from vcpay.auth.two_factor import marked_user_id
from vcpay.extensions import limiter
from vcpay.people.services import normalise_email

DEVICE_COOKIE = "vcpay_device"
DEVICE_DAYS = 365
# A shared clinic computer remembers this many accounts; the oldest goes first.
DEVICE_ACCOUNTS = 10

ADDRESS_BREACH = _l("Too many sign-in attempts from your network.")
ACCOUNT_BREACH = _l("Too many wrong passwords for this email address from here.")
NEW_DEVICE_BREACH = _l(
    "Too many wrong passwords for this account from browsers it has not signed in from "
    "before. If you have signed in to vcpay on another browser or computer, sign in there."
)


@dataclass(frozen=True)
class Device:
    """This browser, as its signed device cookie describes it."""

    id: str
    accounts: tuple[str, ...]


def account_key(email: str) -> str:
    """Names the account of ``email`` without revealing the address, to Redis or the browser."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    digest = hmac.new(secret, b"sign-in:" + normalise_email(email).encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def _attempted_account() -> str:
    return account_key(request.form.get("email", ""))


def by_account_and_address() -> str:
    return f"sign-in:{_attempted_account()}:{get_remote_address()}"


def by_account() -> str:
    return f"sign-in:{_attempted_account()}"


def by_account_and_device() -> str:
    device = this_device()
    return f"sign-in:{_attempted_account()}:device:{device.id if device else ''}"


def known_device() -> bool:
    """This browser has signed in to the account being tried before."""
    device = this_device()
    return device is not None and _attempted_account() in device.accounts


def unknown_device() -> bool:
    return not known_device()


def knows_account(email: str) -> bool:
    """This browser has signed in to the account of ``email`` before."""
    device = this_device()
    return device is not None and account_key(email) in device.accounts


def by_two_factor_account() -> str:
    """The account whose second step is tried: the signed-in person's (enrolling from their
    settings) or the one this browser gave the password of."""
    if current_user.is_authenticated:
        return f"two-factor:{current_user.get_id()}"
    return f"two-factor:{marked_user_id() or get_remote_address()}"


def refused_code(response: Response) -> bool:
    # A wrong code is answered with the form again (400); anything else is not a guess.
    return response.status_code == 400


def refused(response: Response) -> bool:
    # Only refused attempts count against the limits; a success redirects.
    return response.status_code != 302


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="vcpay.known-device")


def this_device() -> Device | None:
    if "sign_in_device" not in g:
        g.sign_in_device = _read_device(request.cookies.get(DEVICE_COOKIE))
    return g.sign_in_device


def _read_device(cookie: str | None) -> Device | None:
    if not cookie:
        return None
    try:
        data = _serializer().loads(cookie, max_age=DEVICE_DAYS * 86400)
    except BadData:  # forged, altered or too old: an unknown browser
        return None
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None
    accounts = data.get("accounts")
    if not isinstance(accounts, list):
        return None
    return Device(data["id"], tuple(a for a in accounts if isinstance(a, str)))


def remember_device(response: Response, email: str) -> None:
    """After a successful sign-in: this browser is now known to the account. A fresh id each
    time, so an old copy of the cookie no longer shares the owner's own limit."""
    key = account_key(email)
    known = this_device()
    others = [account for account in (known.accounts if known else ()) if account != key]
    value = {"id": secrets.token_urlsafe(16), "accounts": [key, *others][:DEVICE_ACCOUNTS]}
    response.set_cookie(
        DEVICE_COOKIE,
        _serializer().dumps(value),
        max_age=DEVICE_DAYS * 86400,
        path=url_for("auth.sign_in"),
        secure=current_app.config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )


def wait_message() -> str:
    """How long until the limit just reached lets this browser try again, in words."""
    reached = limiter.current_limit
    seconds = reached.reset_at - time.time() if reached is not None else 60
    wait = format_timedelta(timedelta(seconds=max(1, round(seconds))))
    return _("Try again in %(wait)s.", wait=wait)
