"""Two-factor sign-in in a person's settings (turning it on and off, new recovery codes),
and an admin's reset of someone else's. The steps of signing in with it are in
vcpay/auth/views.py; the codes themselves in vcpay/auth/two_factor.py."""

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
from vcpay.auth.forms import EnrolForm, TurnOffTwoFactorForm
from vcpay.auth.redirects import is_safe_next
from vcpay.auth.views import WRONG_ENROL_CODE
from vcpay.extensions import db, limiter
from vcpay.forms import ConfirmForm
from vcpay.mail.services import queue_email
from vcpay.people.models import User
from vcpay.people.permissions import Permission, require_over_person
from vcpay.people.services import password_matches
from vcpay.public_urls import public_url_for

blueprint = Blueprint("two_factor", __name__)


TWO_FACTOR_RESET_SUBJECT = _l("vcpay: your two-factor sign-in was reset")


@blueprint.route("/settings/two-factor", endpoint="settings")
@login_required
def settings():
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


@blueprint.route("/settings/two-factor/enrol", methods=["GET", "POST"], endpoint="enrol")
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
        return redirect(url_for("two_factor.settings"), code=303)
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
            return redirect(url_for("two_factor.recovery_codes"), code=303)
        db.session.rollback()
        form.code.errors.append(str(WRONG_ENROL_CODE))
    status = 400 if form.errors else 200
    return render_template(
        "auth/two_factor_enrol.html",
        form=form,
        action=url_for("two_factor.enrol"),
        required=False,
        **two_factor.enrolment(user, secret),
    ), status


@blueprint.route("/settings/two-factor/recovery-codes")
@login_required
def recovery_codes():
    """The recovery codes just made, shown this once (they are kept only as hashes)."""
    codes = session.pop(two_factor.SHOW_CODES_KEY, None)
    if not codes:
        return redirect(url_for("two_factor.settings"))
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
        return redirect(url_for("two_factor.settings"), code=303)
    codes = two_factor.make_recovery_codes(user)
    record_audit("user.recovery_codes_made", user, actor=user)
    db.session.commit()
    session[two_factor.SHOW_CODES_KEY] = codes
    return redirect(url_for("two_factor.recovery_codes"), code=303)


@blueprint.route("/settings/two-factor/turn-off", methods=["POST"])
@login_required
@limiter.limit(
    lambda: current_app.config["LOGIN_ACCOUNT_RATE_LIMIT"],
    methods=["POST"],
    key_func=lambda: f"two-factor-off:{current_user.get_id()}",
    deduct_when=lambda response: response.status_code != 303,
)
def turn_off():
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
            return redirect(url_for("two_factor.settings"), code=303)
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
def reset(user_id: int):
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
    record_audit("user.two_factor_reset", person, within=scope, sessions_ended=ended)
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
