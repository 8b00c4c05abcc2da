from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user

from vcpay.audit.services import record_audit
from vcpay.auth.forms import SignInForm
from vcpay.auth.redirects import is_safe_next
from vcpay.extensions import db, limiter, login_manager
from vcpay.inputs import parse_id
from vcpay.people.models import User
from vcpay.people.services import authenticate, normalise_email

blueprint = Blueprint("auth", __name__)

BAD_CREDENTIALS = _l("That email and password do not match an active account.")


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    key = parse_id(user_id)
    user = db.session.get(User, key) if key is not None else None
    return user if user is not None and user.is_active else None


def _attempted_email() -> str:
    return "sign-in:" + normalise_email(request.form.get("email", ""))


def _failed(response) -> bool:
    # Only refused attempts count against the limits; a success redirects.
    return response.status_code != 302


def _next_page() -> str:
    target = request.args.get("next")
    return target if is_safe_next(target) else url_for("main.home")


@blueprint.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"], deduct_when=_failed
)
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
    methods=["POST"],
    key_func=_attempted_email,
    deduct_when=_failed,
)
def sign_in():
    if current_user.is_authenticated:
        return redirect(_next_page())
    form = SignInForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            # A fresh session on sign-in, so a planted session id is worth nothing.
            session.clear()
            login_user(user)
            record_audit("user.signed_in", user, actor=user)
            db.session.commit()
            return redirect(_next_page())
        flash(str(BAD_CREDENTIALS), "error")
        return render_template("auth/sign_in.html", form=form), 401
    status = 400 if form.errors else 200
    return render_template("auth/sign_in.html", form=form), status


@blueprint.route("/sign-out", methods=["POST"])
@login_required
def sign_out():
    record_audit("user.signed_out", current_user._get_current_object())
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.sign_in"))
