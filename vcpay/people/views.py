"""A person's own settings: which emails they want from vcpay."""

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.extensions import db
from vcpay.notices.services import choose_payment_notices, clinics_noticed_by
from vcpay.people.forms import NoticeSettingsForm

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
