from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required

from vcpay.audit.services import record_audit
from vcpay.auth import throttling, two_factor
from vcpay.auth.forms import (
    EnrolForm,
    ForgotPasswordForm,
    ResetPasswordForm,
    SignInForm,
    TwoFactorForm,
)
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
from vcpay.config import is_local_demo
from vcpay.extensions import db, limiter, login_manager
from vcpay.people.models import User
from vcpay.people.services import authenticate

blueprint = Blueprint("auth", __name__)

BAD_CREDENTIALS = _l("That email and password do not match an active account.")
FORGOT_BREACH = _l("Too many requests for a new password from here or for this address.")
TWO_FACTOR_BREACH = _l("Too many wrong codes for this account.")
WRONG_CODE = _l(
    "That code is not right, or was used already. Enter the code your app shows now, or an "
    "unused recovery code."
)
WRONG_ENROL_CODE = _l(
    "That code is not right. Enter the 6-digit code your app shows now for vcpay."
)
MARKER_GONE = _l("Your sign-in took too long or was already used. Sign in again.")


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
        if user is not None and (user.two_factor_enabled or two_factor.must_enrol(user)):
            # The password is right; the code (or enrolling, for an admin) comes next.
            two_factor.mark_password_passed(user, _next_page())
            db.session.commit()
            step = "auth.two_factor_enrol" if two_factor.must_enrol(user) else "auth.two_factor"
            return redirect(url_for(step))
        if user is not None:
            return _signed_in(user, _next_page())
        flash(str(BAD_CREDENTIALS), "error")
        return _sign_in_page(form), 401
    status = 400 if form.errors else 200
    return _sign_in_page(form), status


def _sign_in_page(form: SignInForm, **context):
    demo = is_local_demo(current_app.config)
    return render_template("auth/sign_in.html", form=form, demo=demo, **context)


def _signed_in(user: User, next_page: str, message: str | None = None):
    """Signs ``user`` in here (every check passed), commits, and sends them to ``next_page``
    (with ``message`` shown there)."""
    new_browser = not throttling.knows_account(user.email)
    begin_sign_in(user)  # a fresh session: the marker and anything else are gone
    if message:
        flash(message, "info")
    record_audit("user.signed_in", user, actor=user)
    if new_browser and current_app.config["NEW_BROWSER_EMAILS"]:
        tell_of_new_browser(user, g.sign_in_session)
    db.session.commit()
    response = redirect(next_page, code=303 if request.endpoint != "auth.sign_in" else 302)
    throttling.remember_device(response, user.email)
    return response


def _second_step_limits(view):
    """Wrong codes count against the account (``TWO_FACTOR_RATE_LIMIT``) and, like refused
    sign-ins, against the address (``LOGIN_RATE_LIMIT``)."""
    view = limiter.limit(
        lambda: current_app.config["LOGIN_RATE_LIMIT"],
        methods=["POST"],
        key_func=lambda: f"two-factor-address:{get_remote_address()}",
        deduct_when=throttling.refused_code,
        error_message=lambda: str(throttling.ADDRESS_BREACH),
    )(view)
    return limiter.limit(
        lambda: current_app.config["TWO_FACTOR_RATE_LIMIT"],
        methods=["POST"],
        key_func=throttling.by_two_factor_account,
        deduct_when=throttling.refused_code,
        error_message=lambda: str(TWO_FACTOR_BREACH),
    )(view)


@blueprint.route("/sign-in/two-factor", methods=["GET", "POST"], endpoint="two_factor")
@_second_step_limits
def two_factor_code():
    """The second step: a code from the person's app, or one of their recovery codes."""
    passed = two_factor.password_passed()
    if passed is None or not passed.user.two_factor_enabled:
        two_factor.forget_marker()
        flash(str(MARKER_GONE), "error")
        return redirect(url_for("auth.sign_in"))
    form = TwoFactorForm()
    if form.validate_on_submit():
        user = passed.user
        checked = two_factor.check_second_factor(user, form.code.data)
        if checked.accepted:
            two_factor.note_signed_in(user)
            message = None
            if checked.recovery_code:
                left = two_factor.recovery_codes_left(user)
                record_audit("user.recovery_code_used", user, actor=user, left=left)
                message = _recovery_codes_left(left)
            return _signed_in(user, passed.next_page or url_for("main.home"), message)
        db.session.commit()  # nothing was accepted; a replay attempt wrote nothing
        form.code.errors.append(str(WRONG_CODE))
    status = 400 if form.errors else 200
    return render_template("auth/two_factor.html", form=form), status


def _recovery_codes_left(left: int) -> str:
    return _(
        "You signed in with a recovery code; it cannot be used again. "
        "You have %(count)s recovery codes left.",
        count=left,
    )


@blueprint.route("/sign-in/two-factor/enrol", methods=["GET", "POST"])
@_second_step_limits
def two_factor_enrol():
    """An admin without two-factor turns it on before their sign-in completes: nothing else is
    reachable meanwhile, since they are not signed in until it is on."""
    passed = two_factor.password_passed()
    if passed is None or passed.user.two_factor_enabled:
        two_factor.forget_marker()
        flash(str(MARKER_GONE), "error")
        return redirect(url_for("auth.sign_in"))
    user = passed.user
    secret = session.get(two_factor.ENROL_KEY) or two_factor.new_secret()
    session[two_factor.ENROL_KEY] = secret
    form = EnrolForm()
    if form.validate_on_submit():
        codes = two_factor.turn_on(user, secret, form.code.data)
        if codes is not None:
            record_audit("user.two_factor_enabled", user, actor=user)
            two_factor.note_signed_in(user)
            response = _signed_in(user, url_for("two_factor.recovery_codes", next=passed.next_page))
            session[two_factor.SHOW_CODES_KEY] = codes
            return response
        db.session.rollback()
        form.code.errors.append(str(WRONG_ENROL_CODE))
    status = 400 if form.errors else 200
    return render_template(
        "auth/two_factor_enrol.html",
        form=form,
        action=url_for("auth.two_factor_enrol"),
        required=True,
        **two_factor.enrolment(user, secret),
    ), status


@blueprint.errorhandler(RateLimitExceeded)
def too_many_attempts(error: RateLimitExceeded):
    """The page again, saying which limit was reached and what to do about it."""
    message = f"{error.description} {throttling.wait_message()}"
    if request.endpoint == "auth.forgot_password":
        page = render_template(
            "auth/forgot_password.html", form=ForgotPasswordForm(), throttled=message
        )
        return page, 429
    if request.endpoint == "auth.two_factor":
        return render_template("auth/two_factor.html", form=TwoFactorForm(), throttled=message), 429
    return _sign_in_page(SignInForm(), throttled=message), 429


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
