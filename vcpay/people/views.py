"""A person's own settings: which emails they want from vcpay, their password, two-factor
sign-in, and where they are signed in; and an admin's reset of someone's two-factor sign-in."""

import secrets

from flask import (
    Blueprint,
    abort,
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
from flask_login import current_user, login_required

from vcpay.audit.services import record_audit
from vcpay.auth import throttling, two_factor
from vcpay.auth.browsers import browser_name
from vcpay.auth.forms import ChangePasswordForm, EnrolForm, TurnOffTwoFactorForm
from vcpay.auth.passwords import change_password as set_new_password
from vcpay.auth.redirects import is_safe_next
from vcpay.auth.sessions import current_sign_in_session, home_place
from vcpay.auth.views import WRONG_CODE, enrolment
from vcpay.extensions import db, limiter
from vcpay.forms import ConfirmForm
from vcpay.mail.services import queue_email
from vcpay.notices.services import choose_payment_notices, clinics_noticed_by
from vcpay.people.forms import NoticeSettingsForm
from vcpay.people.models import User
from vcpay.people.permissions import Permission, require_over_person
from vcpay.people.services import (
    live_sign_in_sessions,
    own_live_sign_in_session,
    password_matches,
    revoke_all_sign_in_sessions,
    revoke_sign_in_session,
)
from vcpay.public_urls import public_url_for

blueprint = Blueprint("people", __name__)


@blueprint.route("/settings", methods=["GET", "POST"])
@login_required
def settings():
    """Payment notices are offered to whoever administers a clinic; anyone else is told why
    there is nothing to choose."""
    clinics = clinics_noticed_by(current_user)
    form = NoticeSettingsForm(payment_notices=current_user.payment_notices)
    if form.is_submitted():
        if not clinics:
            abort(403)
        if form.validate_on_submit():
            _save(form.payment_notices.data)
            return redirect(url_for("people.settings"), code=303)
    return render_template("people/settings.html", form=form, clinics=clinics)


def _save(wanted: bool) -> None:
    if choose_payment_notices(current_user, wanted):
        db.session.commit()
    if wanted:
        message = _("Saved: you will get an email about each payment problem in your clinics.")
    else:
        message = _("Saved: you will get no emails about payment problems.")
    flash(message, "success")


@blueprint.route("/settings/sessions")
@login_required
def sessions():
    """The person's own live sign-ins, this browser's marked, each with a button to end it."""
    here = current_sign_in_session()
    rows = [
        {
            "session": sign_in,
            "browser": browser_name(sign_in.user_agent),
            "is_here": here is not None and sign_in.id == here.id,
        }
        for sign_in in live_sign_in_sessions(current_user)
    ]
    return render_template(
        "people/sessions.html", rows=rows, form=ConfirmForm(), place=home_place(current_user)
    )


@blueprint.route("/settings/sessions/<int:session_id>/end", methods=["POST"])
@login_required
def end_session(session_id: int):
    """Ends one of the person's own sign-ins; anyone else's, or one already over, is a 404."""
    sign_in = own_live_sign_in_session(current_user, session_id)
    if sign_in is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    here = current_sign_in_session()
    revoke_sign_in_session(sign_in)
    record_audit("user.session_ended", current_user._get_current_object(), session=sign_in.id)
    db.session.commit()
    if here is not None and sign_in.id == here.id:
        flash(_("You have signed out."), "info")
        return redirect(url_for("auth.sign_in"), code=303)
    flash(_("That session has ended: the browser is signed out."), "success")
    return redirect(url_for("people.sessions"), code=303)


@blueprint.route("/settings/sessions/end-others", methods=["POST"])
@login_required
def end_other_sessions():
    """Signs the person out everywhere but this browser."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    ended = revoke_all_sign_in_sessions(current_user, keep=current_sign_in_session())
    record_audit("user.other_sessions_ended", current_user._get_current_object(), count=ended)
    db.session.commit()
    flash(_("Every other session has ended: only this browser is still signed in."), "success")
    return redirect(url_for("people.sessions"), code=303)


def _changing_user() -> str:
    return f"change-password:{current_user.get_id()}"


@blueprint.route("/settings/password", methods=["GET", "POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
    methods=["POST"],
    key_func=_changing_user,
    deduct_when=lambda response: response.status_code != 303,
)
def change_password():
    """The current password is asked for, so a browser left signed in is no way to take the
    account (and refused tries are limited as sign-ins are); every other browser signed in as
    the person is signed out."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if password_matches(current_user, form.current_password.data):
            user = current_user._get_current_object()
            set_new_password(user, form.new_password.data, keep=current_sign_in_session())
            db.session.commit()
            flash(
                _("Your password is changed. Other browsers signed in as you are signed out."),
                "success",
            )
            return redirect(url_for("people.settings"), code=303)
        form.current_password.errors.append(_("That is not your current password."))
    status = 400 if form.errors else 200
    return render_template("people/password.html", form=form), status


TWO_FACTOR_RESET_SUBJECT = _l("vcpay: your two-factor sign-in was reset")


@blueprint.route("/settings/two-factor", endpoint="two_factor")
@login_required
def two_factor_settings():
    """Whether the person signs in with a code, and what they may do about it: turn it on;
    make new recovery codes; turn it off unless they must use it (admins)."""
    user = current_user._get_current_object()
    left = two_factor.recovery_codes_left(user) if user.two_factor_enabled else None
    return render_template(
        "people/two_factor.html",
        required=two_factor.is_required(user),
        codes_left=left,
        confirm_form=ConfirmForm(),
        turn_off_form=TurnOffTwoFactorForm(),
    )


@blueprint.route("/settings/two-factor/enrol", methods=["GET", "POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["TWO_FACTOR_RATE_LIMIT"],
    methods=["POST"],
    key_func=throttling.by_two_factor_account,
    deduct_when=throttling.refused_code,
)
def two_factor_enrol():
    """Turning two-factor on from one's settings: the QR code and key, confirmed with a code."""
    user = current_user._get_current_object()
    if user.two_factor_enabled:
        return redirect(url_for("people.two_factor"), code=303)
    secret = session.get(two_factor.ENROL_KEY) or two_factor.new_secret()
    session[two_factor.ENROL_KEY] = secret
    form = EnrolForm()
    if form.validate_on_submit():
        codes = two_factor.turn_on(user, secret, form.code.data)
        if codes is not None:
            record_audit("user.two_factor_enabled", user, actor=user)
            db.session.commit()
            session.pop(two_factor.ENROL_KEY, None)
            session[two_factor.SHOW_CODES_KEY] = codes
            flash(_("Two-factor sign-in is on."), "success")
            return redirect(url_for("people.recovery_codes"), code=303)
        db.session.rollback()
        form.code.errors.append(str(WRONG_CODE))
    status = 400 if form.errors else 200
    return render_template(
        "auth/two_factor_enrol.html",
        form=form,
        action=url_for("people.two_factor_enrol"),
        required=False,
        **enrolment(user, secret),
    ), status


@blueprint.route("/settings/two-factor/recovery-codes")
@login_required
def recovery_codes():
    """The recovery codes just made, shown this once (they are kept only as hashes)."""
    codes = session.pop(two_factor.SHOW_CODES_KEY, None)
    if not codes:
        return redirect(url_for("people.two_factor"))
    target = request.args.get("next")
    next_page = target if is_safe_next(target) else url_for("main.home")
    return render_template("people/recovery_codes.html", codes=codes, next_page=next_page)


@blueprint.route("/settings/two-factor/recovery-codes", methods=["POST"])
@login_required
def new_recovery_codes():
    """Ten new recovery codes; the old ones stop working."""
    user = current_user._get_current_object()
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not user.two_factor_enabled:
        return redirect(url_for("people.two_factor"), code=303)
    codes = two_factor.make_recovery_codes(user)
    record_audit("user.recovery_codes_made", user, actor=user)
    db.session.commit()
    session[two_factor.SHOW_CODES_KEY] = codes
    return redirect(url_for("people.recovery_codes"), code=303)


@blueprint.route("/settings/two-factor/turn-off", methods=["POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
    methods=["POST"],
    key_func=lambda: f"two-factor-off:{current_user.get_id()}",
    deduct_when=lambda response: response.status_code != 303,
)
def turn_off_two_factor():
    """Someone who need not use two-factor turns it off, with their password; an admin may
    not (403)."""
    user = current_user._get_current_object()
    if two_factor.is_required(user):
        abort(403)
    form = TurnOffTwoFactorForm()
    if form.validate_on_submit():
        if password_matches(user, form.password.data):
            if user.two_factor_enabled:
                two_factor.turn_off(user)
                record_audit("user.two_factor_disabled", user, actor=user)
                db.session.commit()
            flash(_("Two-factor sign-in is off: you sign in with your password alone."), "info")
            return redirect(url_for("people.two_factor"), code=303)
        form.password.errors.append(_("That is not your current password."))
    page = render_template(
        "people/two_factor.html",
        required=False,
        codes_left=two_factor.recovery_codes_left(user) if user.two_factor_enabled else None,
        confirm_form=ConfirmForm(),
        turn_off_form=form,
    )
    return page, 400


@blueprint.route("/people/<int:user_id>/two-factor/reset", methods=["POST"])
@login_required
def reset_two_factor(user_id: int):
    """An admin resets someone's two-factor sign-in (a lost phone and lost recovery codes):
    the secret and the codes are gone, the person is signed out everywhere and emailed. Their
    next sign-in asks them to set it up again if they must use it. Never one's own."""
    person = db.session.get(User, user_id)
    scope = require_over_person(Permission.RESET_TWO_FACTOR, person)
    if person.id == current_user.id:
        abort(403)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    ended = two_factor.reset(person)
    organisation = getattr(scope, "organisation", scope)
    record_audit(
        "user.two_factor_reset",
        person,
        organisation=organisation.id,
        clinic=scope.id if scope is not organisation else None,
        sessions_ended=ended,
    )
    queue_email(
        f"two-factor-reset:{person.id}:{secrets.token_hex(8)}",
        person.email,
        TWO_FACTOR_RESET_SUBJECT,
        "two_factor_reset",
        name=person.name,
        admin=current_user.name,
        link=public_url_for("auth.sign_in"),
    )
    db.session.commit()
    flash(
        _(
            "Two-factor sign-in of %(name)s is reset, and they are signed out everywhere.",
            name=person.name,
        ),
        "success",
    )
    target = request.args.get("next")
    return redirect(target if is_safe_next(target) else url_for("main.home"), code=303)
