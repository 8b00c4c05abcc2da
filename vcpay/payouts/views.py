"""The clinic's payouts: the list, what each one carried, its CSV, and Refresh from Stripe.

A payout belongs to a Stripe account, and several clinics of one organisation may share one:
its pages are open to the admins of any clinic linked to that account now (404 for anyone
with no role there, 403 for clinicians).
"""

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select, tuple_

from vcpay.client_payments.stripe_link import live_link, live_links, live_links_for_account
from vcpay.errors import render_error
from vcpay.extensions import db, limiter
from vcpay.forms import ConfirmForm
from vcpay.inputs import parse_id
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import StripeApiError
from vcpay.ledger import keyset
from vcpay.payouts import payout_csv
from vcpay.payouts.contents import PayoutContents, contents_of, status_label, type_label
from vcpay.payouts.models import Payout
from vcpay.payouts.services import refresh_account
from vcpay.people.models import Clinic
from vcpay.people.permissions import (
    ADMINS,
    Permission,
    can,
    clinics_where,
    holds_any,
    require,
    roles_in,
)

blueprint = Blueprint("payouts", __name__, url_prefix="/payouts")


@blueprint.context_processor
def payout_labels() -> dict:
    return {"status_label": status_label, "type_label": type_label}


PERMISSION = Permission.MANAGE_CLIENT_PAYMENTS
PAGE_SIZE = 100


def _clinic(clinic_id: int | None) -> Clinic:
    clinic = db.session.get(Clinic, clinic_id) if clinic_id is not None else None
    require(PERMISSION, clinic)
    return clinic


def _linked_clinics() -> list[Clinic]:
    """The clinics whose payouts the person may see: linked now, and theirs to manage."""
    return [c for c in clinics_where(current_user, PERMISSION) if live_link(c) is not None]


def _viewed_payout(payout_id: int) -> tuple[Payout, Clinic]:
    """The payout, and the clinic through which the person sees it (its time zone is the
    pages'); 404 if no clinic linked to its account is theirs, 403 for the wrong role."""
    payout = db.session.get(Payout, payout_id)
    clinics = (
        [link.clinic for link in live_links_for_account(payout.stripe_account_id)]
        if (payout is not None)
        else []
    )
    for clinic in clinics:
        if can(current_user, PERMISSION, clinic):
            return payout, clinic
    require(PERMISSION, next((c for c in clinics if roles_in(current_user, c)), None))
    abort(404)  # not reached: require refused


@blueprint.route("/")
@login_required
def index():
    if not holds_any(current_user, ADMINS):
        abort(403)
    clinics = _linked_clinics()
    chosen = None
    if "clinic" in request.args:
        chosen = _clinic(parse_id(request.args["clinic"]))
    shown = [chosen] if chosen is not None else clinics
    # Every account of each clinic shown (a clinic may have several), named by its clinic.
    accounts = {link.account_id: c for c in reversed(shown) for link in live_links(c)}
    try:
        after = _position(request.args.get("after", ""))
    except keyset.CursorInvalid:
        return render_error(400, _("This page link is not valid; start from the newest payouts."))
    payouts = _payouts_after(accounts, after)
    older = None
    if len(payouts) > PAGE_SIZE:
        payouts = payouts[:PAGE_SIZE]
        older = keyset.encode(keyset.Position(payouts[-1].created, payouts[-1].id))
    return render_template(
        "payouts/index.html",
        clinics=clinics,
        chosen=chosen,
        payouts=payouts,
        clinic_of=accounts,
        form=ConfirmForm(),
        older=older,
        later_page=after is not None,
    )


def _position(cursor: str) -> keyset.Position | None:
    """Where an "Older payouts" link starts; an edited one is ``CursorInvalid``."""
    return keyset.decode(cursor) if cursor else None


def _payouts_after(accounts, after: keyset.Position | None) -> list[Payout]:
    """A page of payouts newest first, and one more to know whether there are older ones:
    a keyset page, so payouts arriving meanwhile shift nothing."""
    query = select(Payout).where(Payout.stripe_account_id.in_(accounts))
    if after is not None:
        edge = tuple_(after.created_at, after.id)
        query = query.where(tuple_(Payout.created, Payout.id) < edge)
    query = query.order_by(Payout.created.desc(), Payout.id.desc()).limit(PAGE_SIZE + 1)
    return list(db.session.scalars(query))


@blueprint.route("/clinics/<int:clinic_id>/refresh", methods=["POST"])
@login_required
@limiter.limit("20 per minute")
def refresh(clinic_id: int):
    """Read the clinic's payouts from Stripe now, rather than wait for its webhooks."""
    clinic = _clinic(clinic_id)
    back = redirect(url_for("payouts.index", clinic=clinic.id), code=303)
    links = live_links(clinic)
    if not links or not ConfirmForm().validate_on_submit():
        if not links:
            flash(_("This clinic has no linked Stripe account."), "warning")
        return back
    try:
        stripe_api = StripeApi.for_app()
        kept = [payout for link in links for payout in refresh_account(link.account_id, stripe_api)]
    except StripeApiError as error:
        db.session.rollback()
        flash(_("Could not read the payouts from Stripe: %(why)s", why=error.words), "error")
        return back
    db.session.commit()
    flash(_("Payouts read again from Stripe: %(count)s.", count=len(kept)), "success")
    return back


@blueprint.route("/<int:payout_id>")
@login_required
def detail(payout_id: int):
    payout, clinic = _viewed_payout(payout_id)
    contents: PayoutContents = contents_of(payout)
    return render_template("payouts/detail.html", payout=payout, clinic=clinic, contents=contents)


@blueprint.route("/<int:payout_id>/export.csv")
@login_required
def export(payout_id: int):
    payout, clinic = _viewed_payout(payout_id)
    app = current_app._get_current_object()
    locale = str(get_locale() or "en")
    return Response(
        payout_csv.rows(app, payout.id, clinic.time_zone, locale),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="payout-{payout.payout_id}.csv"',
            "Cache-Control": "no-store",
        },
    )
