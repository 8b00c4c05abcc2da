from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.client_payments.oauth import LinkingFailed, finish_linking, start_linking
from vcpay.client_payments.stripe_link import live_link, refresh_links, remove_link
from vcpay.enablement.queries import latest_request_by_clinic
from vcpay.enablement.services import requestable_clinics
from vcpay.extensions import db, limiter
from vcpay.forms import ConfirmForm
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import (
    AccountNotConnected,
    StripeApiError,
    StripeUnavailable,
)
from vcpay.people.models import Clinic
from vcpay.people.permissions import Permission, clinics_where, require

blueprint = Blueprint("client_payments", __name__, url_prefix="/client-payments")


def _clinic(clinic_id: int) -> Clinic:
    clinic = db.session.get(Clinic, clinic_id)
    require(Permission.MANAGE_CLIENT_PAYMENTS, clinic)
    return clinic


def _to_clinic(clinic: Clinic):
    return redirect(url_for("client_payments.clinic", clinic_id=clinic.id), code=303)


@blueprint.route("/")
@login_required
def index():
    clinics = clinics_where(current_user, Permission.MANAGE_CLIENT_PAYMENTS)
    organisations = sorted({c.organisation for c in clinics}, key=lambda o: o.name)
    return render_template(
        "client_payments/index.html",
        clinics=clinics,
        organisations=organisations,
        requests=latest_request_by_clinic(clinics),
        links={c.id: live_link(c) for c in clinics},
        requestable={o.id: bool(requestable_clinics(current_user, o)) for o in organisations},
    )


@blueprint.route("/clinics/<int:clinic_id>")
@login_required
def clinic(clinic_id: int):
    clinic = _clinic(clinic_id)
    link = live_link(clinic)
    return render_template(
        "client_payments/clinic.html",
        clinic=clinic,
        link=link,
        dashboard_url=StripeApi.for_app().dashboard_url(link.account_id) if link else None,
        enablement=latest_request_by_clinic([clinic]).get(clinic.id),
        can_request=clinic in requestable_clinics(current_user, clinic.organisation),
        form=ConfirmForm(),
    )


@blueprint.route("/clinics/<int:clinic_id>/stripe/connect", methods=["POST"])
@login_required
@limiter.limit("20 per minute")
def connect_stripe(clinic_id: int):
    """Go to Stripe: sign in there and connect the clinic's existing account."""
    clinic = _clinic(clinic_id)
    if not ConfirmForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return _to_clinic(clinic)
    if not clinic.gateway_enabled:
        flash(_("The Payment Gateway is not switched on for this clinic yet."), "error")
        return _to_clinic(clinic)
    if live_link(clinic) is not None:
        flash(_("This clinic is already linked to a Stripe account."), "warning")
        return _to_clinic(clinic)
    stripe_address = start_linking(clinic, current_user, StripeApi.for_app())
    db.session.commit()
    return redirect(stripe_address, code=303)


@blueprint.route("/stripe/callback")
@login_required
def stripe_callback():
    """Where Stripe sends the person back, for every clinic (the clinic is in the state)."""
    try:
        linked = finish_linking(
            request.args,
            current_user,
            StripeApi.for_app(),
            may_link=lambda clinic: require(Permission.MANAGE_CLIENT_PAYMENTS, clinic),
        )
    except LinkingFailed as failure:
        db.session.commit()  # the attempt keeps why it failed
        flash(failure.message, "error")
        if failure.clinic_id is None:
            return redirect(url_for("client_payments.index"), code=303)
        return redirect(url_for("client_payments.clinic", clinic_id=failure.clinic_id), code=303)
    db.session.commit()
    link = linked.link
    flash(
        _("Linked Stripe account %(name)s (%(id)s).", name=link.display_name, id=link.account_id),
        "success",
    )
    if linked.shared_with:
        names = ", ".join(c.name for c in linked.shared_with)
        flash(
            _(
                "This Stripe account is also linked to %(clinics)s: payments to these clinics "
                "all go to the same account.",
                clinics=names,
            ),
            "warning",
        )
    return _to_clinic(link.clinic)


@blueprint.route("/clinics/<int:clinic_id>/stripe/refresh", methods=["POST"])
@login_required
@limiter.limit("20 per minute")
def refresh_stripe(clinic_id: int):
    clinic = _clinic(clinic_id)
    link = live_link(clinic)
    if link is None or not ConfirmForm().validate_on_submit():
        return _to_clinic(clinic)
    try:
        refresh_links(link.account_id, StripeApi.for_app())
    except AccountNotConnected:
        flash(
            _(
                "Stripe says the account is no longer connected to vcpay; remove the link "
                "and link it again."
            ),
            "error",
        )
        return _to_clinic(clinic)
    except StripeApiError as error:
        flash(_("Could not read the account from Stripe: %(why)s", why=error.words), "error")
        return _to_clinic(clinic)
    db.session.commit()
    flash(_("Account details read again from Stripe."), "success")
    return _to_clinic(clinic)


@blueprint.route("/clinics/<int:clinic_id>/stripe/remove", methods=["GET", "POST"])
@login_required
def remove_stripe(clinic_id: int):
    clinic = _clinic(clinic_id)
    link = live_link(clinic)
    if link is None:
        flash(_("This clinic has no linked Stripe account."), "warning")
        return _to_clinic(clinic)
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("client_payments/remove.html", clinic=clinic, link=link, form=form)
    try:
        still_using = remove_link(link, current_user, StripeApi.for_app())
    except StripeUnavailable:
        db.session.rollback()
        flash(
            _(
                "Stripe could not be reached, so the account is still linked. Please try "
                "again in a few minutes."
            ),
            "error",
        )
        return _to_clinic(clinic)
    except StripeApiError as error:
        db.session.rollback()
        flash(
            _(
                "Stripe refused to disconnect the account, so it is still linked: %(why)s",
                why=error.words,
            ),
            "error",
        )
        return _to_clinic(clinic)
    db.session.commit()
    flash(
        _("Stripe account %(id)s removed from %(clinic)s.", id=link.account_id, clinic=clinic.name),
        "success",
    )
    if still_using:
        names = ", ".join(c.name for c in still_using)
        flash(_("The account stays connected to vcpay for %(clinics)s.", clinics=names), "warning")
    return _to_clinic(clinic)
