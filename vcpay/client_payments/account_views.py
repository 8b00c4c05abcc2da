"""Client Payments, a clinic's several accounts: rename one, make one the
default, route a clinician's payments to one. Clinic admins of the clinic only; another
organisation's clinic, account or route is a 404."""

from flask import Blueprint, abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.client_payments.accounts import (
    AccountChangeRefused,
    clinicians,
    make_default,
    remove_route,
    rename_link,
    set_route,
)
from vcpay.client_payments.forms import RenameAccountForm, RouteForm
from vcpay.client_payments.models import AccountRoute, StripeLink
from vcpay.client_payments.stripe_link import live_links
from vcpay.client_payments.views import managed_clinic
from vcpay.extensions import db, limiter
from vcpay.forms import ConfirmForm
from vcpay.people.models import Clinic, User

blueprint = Blueprint("stripe_accounts", __name__, url_prefix="/client-payments")


def _live_link(clinic: Clinic, link_id: int) -> StripeLink:
    link = db.session.get(StripeLink, link_id)
    if link is None or link.clinic_id != clinic.id:
        abort(404)
    if not link.is_live:
        raise AccountChangeRefused(_("That account was removed a moment ago."))
    return link


def _back(clinic: Clinic):
    return redirect(url_for("client_payments.clinic", clinic_id=clinic.id), code=303)


def _form_errors(form) -> str:
    messages = [str(m) for errors in form.errors.values() for m in errors]
    return " ".join(messages) or _("The form expired; please try again.")


def _done(clinic: Clinic, changed: bool, message: str):
    db.session.commit()
    if changed:
        flash(message, "success")
    return _back(clinic)


def _refused(clinic: Clinic, refusal: AccountChangeRefused):
    db.session.rollback()
    flash(refusal.message, "error")
    return _back(clinic)


@blueprint.route("/clinics/<int:clinic_id>/stripe/<int:link_id>/rename", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def rename(clinic_id: int, link_id: int):
    clinic = managed_clinic(clinic_id)
    form = RenameAccountForm()
    try:
        link = _live_link(clinic, link_id)
        if not form.validate_on_submit():
            raise AccountChangeRefused(_form_errors(form))
        changed = rename_link(link, form.name.data, current_user)
    except AccountChangeRefused as refusal:
        return _refused(clinic, refusal)
    return _done(clinic, changed, _("The account is now called %(name)s.", name=link.name))


@blueprint.route("/clinics/<int:clinic_id>/stripe/<int:link_id>/default", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def make_default_account(clinic_id: int, link_id: int):
    clinic = managed_clinic(clinic_id)
    try:
        link = _live_link(clinic, link_id)
        if not ConfirmForm().validate_on_submit():
            raise AccountChangeRefused(_("The form expired; please try again."))
        changed = make_default(link, current_user)
    except AccountChangeRefused as refusal:
        return _refused(clinic, refusal)
    message = _("%(name)s is now the clinic's default account.", name=link.label)
    return _done(clinic, changed, message)


@blueprint.route("/clinics/<int:clinic_id>/routes", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def route(clinic_id: int):
    clinic = managed_clinic(clinic_id)
    links = live_links(clinic)
    form = RouteForm().offer(clinicians(clinic), links)
    try:
        if not form.validate_on_submit():
            raise AccountChangeRefused(_form_errors(form))
        clinician = db.session.get(User, int(form.clinician.data))
        link = _live_link(clinic, int(form.link.data))
        changed = set_route(clinic, clinician, link, current_user)
    except AccountChangeRefused as refusal:
        return _refused(clinic, refusal)
    message = _(
        "Payments requested in %(clinician)s's calls now go to %(account)s.",
        clinician=clinician.name,
        account=link.label,
    )
    return _done(clinic, changed, message)


@blueprint.route("/clinics/<int:clinic_id>/routes/<int:route_id>/remove", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def unroute(clinic_id: int, route_id: int):
    clinic = managed_clinic(clinic_id)
    found = db.session.get(AccountRoute, route_id)
    if found is None or found.clinic_id != clinic.id:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        return _refused(clinic, AccountChangeRefused(_("The form expired; please try again.")))
    name = found.clinician.name
    remove_route(found, current_user)
    message = _(
        "Payments in %(clinician)s's calls go to the clinic's default again.", clinician=name
    )
    return _done(clinic, True, message)
