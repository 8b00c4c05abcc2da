"""Sign-ins held on the server: the cookie only names one, the database says whether it lives.

So signing out, a new password or a disabled account ends a sign-in everywhere at once, even in
a browser (or a copy of its cookie) that never hears of it.
"""

from datetime import timedelta

from flask import current_app, g, request, session
from flask_login import current_user, login_user, logout_user

from vcpay.inputs import parse_id
from vcpay.people.models import SignInSession, User
from vcpay.people.services import (
    find_live_sign_in_session,
    note_sign_in_session_seen,
    open_sign_in_session,
    revoke_sign_in_session,
)
from vcpay.transactions import commit_unit

SESSION_KEY = "sign_in"


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
    g.sign_in_session, session[SESSION_KEY] = open_sign_in_session(user, lifetime)


def end_sign_in() -> None:
    """Revokes this browser's sign-in (the caller commits) and forgets it here."""
    sign_in = current_sign_in_session()
    if sign_in is not None:
        revoke_sign_in_session(sign_in)
    logout_user()
    session.clear()


def note_activity() -> None:
    """Runs before every view: loads the person first, so that a "last seen" mark is committed
    on its own and never together with half of a view's work."""
    if request.endpoint == "static":
        return
    sign_in = current_sign_in_session()
    if sign_in is not None and note_sign_in_session_seen(sign_in):
        commit_unit()
