from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.client_payments.accounts import clinicians, routes_of, routes_to
from vcpay.client_payments.forms import TO_DEFAULT, RemoveAccountForm, RenameAccountForm, RouteForm
from vcpay.client_payments.models import StripeLink
from vcpay.client_payments.oauth import LinkingFailed, finish_linking, start_linking
from vcpay.client_payments.stripe_link import (
    Handover,
    live_link,
    live_links,
    refresh_links,
    remove_link,
)
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


def managed_clinic(clinic_id: int) -> Clinic:
    """The clinic, if the signed-in person manages its Client Payments (else 403 or 404)."""
    clinic = db.session.get(Clinic, clinic_id)
    require(Permission.MANAGE_CLIENT_PAYMENTS, clinic)
    return clinic


def _link(clinic: Clinic, link_id: int | None) -> StripeLink | None:
    """The clinic's live link ``link_id`` (another clinic's is a 404), or its default."""
    if link_id is None:
        return live_link(clinic)
    link = db.session.get(StripeLink, link_id)
    if link is None or link.clinic_id != clinic.id:
        abort(404)
    return link if link.is_live else None


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
        links={c.id: live_links(c) for c in clinics},
        requestable={o.id: bool(requestable_clinics(current_user, o)) for o in organisations},
    )


@blueprint.route("/clinics/<int:clinic_id>")
@login_required
def clinic(clinic_id: int):
    clinic = managed_clinic(clinic_id)
    links = live_links(clinic)
    stripe_api = StripeApi.for_app()
    return render_template(
        "client_payments/clinic.html",
        clinic=clinic,
        links=links,
        dashboard_urls={link.id: stripe_api.dashboard_url(link.account_id) for link in links},
        routes=routes_of(clinic),
        route_form=RouteForm().offer(clinicians(clinic), links),
        rename_form=RenameAccountForm(),
        enablement=latest_request_by_clinic([clinic]).get(clinic.id),
        can_request=clinic in requestable_clinics(current_user, clinic.organisation),
        form=ConfirmForm(),
    )


@blueprint.route("/clinics/<int:clinic_id>/stripe/connect", methods=["POST"])
@login_required
@limiter.limit("20 per minute")
def connect_stripe(clinic_id: int):
    """Go to Stripe: sign in there and connect the clinic's existing account."""
    clinic = managed_clinic(clinic_id)
    if not ConfirmForm().validate_on_submit():
        flash(_("The form expired; please try again."), "error")
        return _to_clinic(clinic)
    if not clinic.gateway_enabled:
        flash(_("The Payment Gateway is not switched on for this clinic yet."), "error")
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
@blueprint.route("/clinics/<int:clinic_id>/stripe/<int:link_id>/refresh", methods=["POST"])
@login_required
@limiter.limit("20 per minute")
def refresh_stripe(clinic_id: int, link_id: int | None = None):
    clinic = managed_clinic(clinic_id)
    link = _link(clinic, link_id)
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
@blueprint.route("/clinics/<int:clinic_id>/stripe/<int:link_id>/remove", methods=["GET", "POST"])
@login_required
def remove_stripe(clinic_id: int, link_id: int | None = None):
    clinic = managed_clinic(clinic_id)
    link = _link(clinic, link_id)
    if link is None:
        if link_id is not None:
            flash(_("That account was removed a moment ago."), "warning")
        else:
            flash(_("This clinic has no linked Stripe account."), "warning")
        return _to_clinic(clinic)
    others = [other for other in live_links(clinic) if other.id != link.id]
    routed = routes_to(link)
    form = RemoveAccountForm().offer(link, others, len(routed))
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        page = render_template(
            "client_payments/remove.html",
            clinic=clinic,
            link=link,
            others=others,
            routed=routed,
            form=form,
        )
        return page, status
    try:
        handover = _handover(form, others)
        still_using = remove_link(link, current_user, StripeApi.for_app(), handover)
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


def _handover(form: RemoveAccountForm, others: list[StripeLink]) -> Handover:
    """What the removal form chose, among the live links it offered."""
    by_id = {str(other.id): other for other in others}
    new_default = getattr(form, "new_default", None)
    routes = getattr(form, "routes_to", None)
    return Handover(
        routes_to=None if routes is None or routes.data == TO_DEFAULT else by_id[routes.data],
        default=by_id[new_default.data] if new_default is not None else None,
    )
