"""Sign-ins held on the server: the cookie only names one, the database says whether it lives.

So signing out, a new password or a disabled account ends a sign-in everywhere at once, even in
a browser (or a copy of its cookie) that never hears of it.
"""

from datetime import timedelta

from flask import (
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user

from vcpay.audit.services import record_audit
from vcpay.auth.browsers import browser_name
from vcpay.inputs import parse_id
from vcpay.mail.services import queue_email
from vcpay.people.models import SignInSession, User
from vcpay.people.permissions import ADMINS, holds_any
from vcpay.people.services import (
    find_live_sign_in_session,
    has_been_idle,
    note_sign_in_session_seen,
    open_sign_in_session,
    revoke_sign_in_session,
)
from vcpay.transactions import commit_unit

SESSION_KEY = "sign_in"
# How long before an idle admin's sign-in ends their open page warns them.
IDLE_WARNING = timedelta(minutes=2)

NEW_BROWSER_SUBJECT = _l("vcpay: a sign-in from a new browser")


def load_signed_in_user(user_id: str) -> User | None:
    """Flask-Login's user loader: the user only while their sign-in in this browser is live."""
    key = parse_id(user_id)
    if key is None:
        return None
    sign_in = find_live_sign_in_session(session.get(SESSION_KEY), key)
    if sign_in is None or not sign_in.user.is_active:
        return None
    g.sign_in_session = sign_in
    return sign_in.user


def current_sign_in_session() -> SignInSession | None:
    if not current_user.is_authenticated:
        return None
    return g.get("sign_in_session")


def begin_sign_in(user: User) -> None:
    # A fresh session on sign-in, so a planted session id is worth nothing.
    session.clear()
    login_user(user)
    lifetime = timedelta(hours=current_app.config["SESSION_HOURS"])
    user_agent = request.user_agent.string or ""
    g.sign_in_session, session[SESSION_KEY] = open_sign_in_session(
        user, lifetime, user_agent, request.remote_addr or ""
    )


def home_place(user: User):
    """Whose clocks a person's sign-in times are told by: their first clinic's, else their
    organisation's, else the default zone (None)."""
    if user.clinic_memberships:
        return user.clinic_memberships[0].clinic
    if user.organisation_memberships:
        return user.organisation_memberships[0].organisation
    return None


def tell_of_new_browser(user: User, sign_in: SignInSession) -> None:
    """Queues the email a person gets when they sign in from a browser never used for their
    account (no known-device cookie for it); the caller commits."""
    queue_email(
        f"new-browser:{sign_in.id}",
        user.email,
        NEW_BROWSER_SUBJECT,
        "new_browser_sign_in",
        user=user,
        moment=sign_in.created_at,
        place=home_place(user),
        browser=browser_name(sign_in.user_agent),
        address=sign_in.address or "?",
        sessions_link=url_for("people.sessions", _external=True),
    )


def end_sign_in() -> None:
    """Revokes this browser's sign-in (the caller commits) and forgets it here."""
    sign_in = current_sign_in_session()
    if sign_in is not None:
        revoke_sign_in_session(sign_in)
    logout_user()
    session.clear()


def idle_limit(user: User) -> timedelta | None:
    """How long someone may go without a page before their sign-in ends: admins only."""
    if not holds_any(user, ADMINS):
        return None
    return timedelta(minutes=current_app.config["ADMIN_IDLE_MINUTES"])


def note_activity():
    """Runs before every view: loads the person first, so that a "last seen" mark is committed
    on its own and never together with half of a view's work. An admin idle for longer than
    ``ADMIN_IDLE_MINUTES`` is signed out here instead, and sent to sign in again."""
    if request.endpoint == "static":
        return None
    sign_in = current_sign_in_session()
    if sign_in is None:
        return None
    limit = idle_limit(sign_in.user)
    if limit is not None and has_been_idle(sign_in, limit):
        return _end_idle_sign_in(sign_in, limit)
    if note_sign_in_session_seen(sign_in):
        commit_unit()
    return None


def _end_idle_sign_in(sign_in: SignInSession, limit: timedelta):
    record_audit("user.signed_out_idle", sign_in.user, actor=sign_in.user)
    end_sign_in()
    commit_unit()  # the page's own bookkeeping, before it sends the person to sign in
    minutes = int(limit.total_seconds() // 60)
    message = _(
        "You were signed out after %(minutes)s minutes without using vcpay. Sign in again.",
        minutes=minutes,
    )
    flash(message, "info")
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    return redirect(url_for("auth.sign_in", next=target))


def idle_context() -> dict:
    """For the page's idle warning (vcpay/static/js/idle.js): the seconds until this admin's
    sign-in would end, and until the warning shows. None outside a signed-in page (an email,
    a patient's page): only the person's own loader puts a sign-in here."""
    sign_in = g.get("sign_in_session") if has_request_context() else None
    if sign_in is None or sign_in.revoked_at is not None:
        return {}
    limit = idle_limit(sign_in.user)
    if limit is None:
        return {}
    seconds = int(limit.total_seconds())
    warn = max(0, seconds - int(IDLE_WARNING.total_seconds()))
    return {"idle_seconds": seconds, "idle_warn_seconds": warn}
