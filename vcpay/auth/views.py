from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required

from vcpay.audit.services import record_audit
from vcpay.auth import throttling
from vcpay.auth.forms import ForgotPasswordForm, ResetPasswordForm, SignInForm
from vcpay.auth.passwords import ask_for_reset, reset_password, user_for_reset_token
from vcpay.auth.redirects import is_safe_next
from vcpay.auth.sessions import (
    begin_sign_in,
    end_sign_in,
    idle_context,
    load_signed_in_user,
    note_activity,
    tell_of_new_browser,
)
from vcpay.extensions import db, limiter, login_manager
from vcpay.people.services import authenticate

blueprint = Blueprint("auth", __name__)

BAD_CREDENTIALS = _l("That email and password do not match an active account.")
FORGOT_BREACH = _l("Too many requests for a new password from here or for this address.")


login_manager.user_loader(load_signed_in_user)
blueprint.before_app_request(note_activity)
blueprint.app_context_processor(idle_context)


def _next_page() -> str:
    target = request.args.get("next")
    return target if is_safe_next(target) else url_for("main.home")


@blueprint.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT"],
    methods=["POST"],
    deduct_when=throttling.refused,
    error_message=lambda: str(throttling.ADDRESS_BREACH),
)
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
    methods=["POST"],
    key_func=throttling.by_account_and_address,
    deduct_when=throttling.refused,
    error_message=lambda: str(throttling.ACCOUNT_BREACH),
)
@limiter.limit(
    lambda: current_app.config["LOGIN_NEW_DEVICE_RATE_LIMIT"],
    methods=["POST"],
    key_func=throttling.by_account,
    exempt_when=throttling.known_device,
    deduct_when=throttling.refused,
    error_message=lambda: str(throttling.NEW_DEVICE_BREACH),
)
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
    methods=["POST"],
    key_func=throttling.by_account_and_device,
    exempt_when=throttling.unknown_device,
    deduct_when=throttling.refused,
    error_message=lambda: str(throttling.ACCOUNT_BREACH),
)
def sign_in():
    if current_user.is_authenticated:
        return redirect(_next_page())
    form = SignInForm()
    if form.validate_on_submit():
        user = authenticate(form.email.data, form.password.data)
        if user is not None:
            new_browser = throttling.unknown_device()
            begin_sign_in(user)
            record_audit("user.signed_in", user, actor=user)
            if new_browser and current_app.config["NEW_BROWSER_EMAILS"]:
                tell_of_new_browser(user, g.sign_in_session)
            db.session.commit()
            response = redirect(_next_page())
            throttling.remember_device(response, form.email.data)
            return response
        flash(str(BAD_CREDENTIALS), "error")
        return render_template("auth/sign_in.html", form=form), 401
    status = 400 if form.errors else 200
    return render_template("auth/sign_in.html", form=form), status


@blueprint.errorhandler(RateLimitExceeded)
def too_many_attempts(error: RateLimitExceeded):
    """The page again, saying which limit was reached and what to do about it."""
    message = f"{error.description} {throttling.wait_message()}"
    if request.endpoint == "auth.forgot_password":
        page = render_template(
            "auth/forgot_password.html", form=ForgotPasswordForm(), throttled=message
        )
        return page, 429
    return render_template("auth/sign_in.html", form=SignInForm(), throttled=message), 429


@blueprint.route("/sign-out", methods=["POST"])
@login_required
def sign_out():
    record_audit("user.signed_out", current_user._get_current_object())
    end_sign_in()
    db.session.commit()
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.sign_in"))


def _asked_email() -> str:
    return f"forgot:{throttling.account_key(request.form.get('email', ''))}"


@blueprint.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["FORGOT_PASSWORD_RATE_LIMIT"],
    methods=["POST"],
    key_func=lambda: f"forgot:{get_remote_address()}",
    error_message=lambda: str(FORGOT_BREACH),
)
@limiter.limit(
    lambda: current_app.config["FORGOT_PASSWORD_EMAIL_RATE_LIMIT"],
    methods=["POST"],
    key_func=_asked_email,
    error_message=lambda: str(FORGOT_BREACH),
)
def forgot_password():
    """The same words and status whether or not the address is a person's: only an active
    person with it is emailed."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        ask_for_reset(form.email.data)
        db.session.commit()
        sent = form.email.data.strip()
        return render_template("auth/forgot_password.html", form=ForgotPasswordForm(), sent=sent)
    status = 400 if form.errors else 200
    return render_template("auth/forgot_password.html", form=form), status


@blueprint.route("/reset-password/<token>", methods=["GET", "POST"], endpoint="reset_password")
def reset_password_page(token: str):
    user = user_for_reset_token(token)
    if user is None:
        return render_template("auth/reset_password.html", form=None), 404
    form = ResetPasswordForm()
    if form.validate_on_submit():
        if not reset_password(user, form.new_password.data):
            db.session.rollback()
            return render_template("auth/reset_password.html", form=None), 404
        db.session.commit()
        flash(_("Your password is changed. Sign in with it."), "success")
        return redirect(url_for("auth.sign_in"), code=303)
    status = 400 if form.errors else 200
    return render_template("auth/reset_password.html", form=form, user=user), status
