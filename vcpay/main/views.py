from flask import Blueprint, flash, redirect, render_template, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.auth.redirects import is_safe_next
from vcpay.extensions import db
from vcpay.main.forms import LanguageForm
from vcpay.people.models import Organisation
from vcpay.people.permissions import Permission, can, require, roles_in

blueprint = Blueprint("main", __name__)


@blueprint.route("/")
@login_required
def home():
    return render_template("main/home.html", places=_places_of(current_user))


def _places_of(user) -> list[dict]:
    """Each organisation the user works in, with their roles there and in its clinics."""
    organisations = {m.organisation for m in user.organisation_memberships}
    organisations.update(m.clinic.organisation for m in user.clinic_memberships)
    places = []
    for organisation in sorted(organisations, key=lambda o: o.name):
        clinics = [
            {"clinic": clinic, "roles": sorted(roles_in(user, clinic))}
            for clinic in organisation.clinics
            if roles_in(user, clinic)
        ]
        places.append(
            {
                "organisation": organisation,
                "roles": sorted(roles_in(user, organisation)),
                "clinics": clinics,
            }
        )
    return places


@blueprint.route("/organisations/<int:organisation_id>")
@login_required
def organisation(organisation_id: int):
    organisation = db.session.get(Organisation, organisation_id)
    require(Permission.VIEW_ORGANISATION, organisation)
    visible = [c for c in organisation.clinics if roles_in(current_user, c)]
    manages_team = can(current_user, Permission.MANAGE_ORGANISATION_TEAM, organisation)
    return render_template(
        "main/organisation.html",
        organisation=organisation,
        clinics=visible,
        manages_team=manages_team,
    )


@blueprint.route("/language", methods=["POST"])
def change_language():
    form = LanguageForm()
    target = form.next.data if is_safe_next(form.next.data) else url_for("main.home")
    if not form.validate_on_submit():
        flash(_("Choose one of the languages in the list."), "error")
        return redirect(target)
    session["locale"] = form.language.data
    if current_user.is_authenticated:
        current_user.locale = form.language.data
        db.session.commit()
    return redirect(target)
