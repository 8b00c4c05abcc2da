"""A person's own settings: which emails they want from vcpay, their password, and where
they are signed in."""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.audit.services import record_audit
from vcpay.auth.browsers import browser_name
from vcpay.auth.forms import ChangePasswordForm
from vcpay.auth.passwords import change_password as set_new_password
from vcpay.auth.sessions import current_sign_in_session, home_place
from vcpay.extensions import db, limiter
from vcpay.forms import ConfirmForm
from vcpay.notices.services import choose_payment_notices, clinics_noticed_by
from vcpay.people.forms import NoticeSettingsForm
from vcpay.people.services import (
    live_sign_in_sessions,
    own_live_sign_in_session,
    password_matches,
    revoke_all_sign_in_sessions,
    revoke_sign_in_session,
)

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
