"""A person's own settings: which emails they want from vcpay, their password."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.auth.forms import ChangePasswordForm
from vcpay.auth.passwords import change_password as set_new_password
from vcpay.auth.sessions import current_sign_in_session
from vcpay.extensions import db, limiter
from vcpay.notices.services import choose_payment_notices, clinics_noticed_by
from vcpay.people.forms import NoticeSettingsForm
from vcpay.people.services import password_matches

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
