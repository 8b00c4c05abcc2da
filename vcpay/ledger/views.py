"""Payments: the list with its filters, totals and chart; one payment's page; sending its
receipt again; the CSV export; a clinic's time zone. Every route checks its clinic, and a
person who only consults sees only the requests they made."""

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.audit.services import record_audit
from vcpay.errors import render_error
from vcpay.extensions import db, limiter
from vcpay.integrations.stripe_api import StripeApi
from vcpay.ledger import keyset
from vcpay.ledger.chart import takings_chart
from vcpay.ledger.filters import (
    STATUS_CHOICES,
    FilterRefused,
    accounts_of,
    page_position,
    read_filter,
    today_in,
    visible_clinics,
)
from vcpay.ledger.forms import ClinicTimeZoneForm, ResendReceiptForm
from vcpay.ledger.ledger_csv import csv_chunks, file_name
from vcpay.ledger.listing import page_of
from vcpay.ledger.payment_timeline import refunds_of, timeline_of
from vcpay.ledger.resending import resend_receipt
from vcpay.ledger.roster import clinicians_of
from vcpay.ledger.takings import totals_and_takings
from vcpay.payments.models import PaymentRequest
from vcpay.people.models import Clinic
from vcpay.people.permissions import Permission, can, require

blueprint = Blueprint("ledger", __name__, url_prefix="/payments")


@blueprint.context_processor
def clinic_time_helpers() -> dict:
    return {"status_choices": STATUS_CHOICES}


def _position(args) -> tuple[keyset.Position | None, bool]:
    """Where the page starts: after a row (older), or before one (newer)."""
    cursor, newer = args.get("after", ""), False
    if not cursor and args.get("before"):
        cursor, newer = args["before"], True
    return page_position(cursor), newer


@blueprint.route("/")
@login_required
def index():
    try:
        ledger = read_filter(current_user, request.args)
        position, newer = _position(request.args)
    except FilterRefused as refused:
        views = visible_clinics(current_user)
        page = render_template(
            "ledger/index.html",
            error=refused.message,
            views=views,
            args=request.args,
            clinicians=clinicians_of(views),
            accounts=accounts_of(views),
        )
        return page, 400
    page = page_of(ledger, position, newer)
    # The totals and the chart are the selection's, the same on each of its pages: they are
    # read on its first page only, so that going through the pages costs a page each.
    totals = chart = None
    if page.newer is None:
        totals, takings = totals_and_takings(ledger)
        chart = takings_chart(takings)
    return render_template(
        "ledger/index.html",
        ledger=ledger,
        views=ledger_views(ledger),
        args=ledger.args,
        page=page,
        totals=totals,
        chart=chart,
        clinicians=clinicians_of(ledger_views(ledger)),
        accounts=accounts_of(ledger.views),
        cursor=keyset.encode,
        every_day_args=ledger.args | {"from": "", "to": ""},
    )


def ledger_views(ledger):
    """Every clinic the person sees, for the clinic choice, whichever is chosen now."""
    return visible_clinics(current_user) if ledger.clinic_id else list(ledger.views)


@blueprint.route("/export.csv")
@login_required
@limiter.limit("30 per minute")
def export():
    try:
        ledger = read_filter(current_user, request.args)
    except FilterRefused as refused:
        return render_error(400, refused.message)
    response = Response(stream_with_context(csv_chunks(ledger)), mimetype="text/csv")
    name = file_name(ledger, today_in(ledger.views))
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"  # patients' names and emails
    return response


def _visible_payment(payment_id: int) -> PaymentRequest:
    payment = db.session.get(PaymentRequest, payment_id)
    require(Permission.VIEW_PAYMENTS, payment)
    sees_all = can(current_user, Permission.VIEW_CLINIC_PAYMENTS, payment.clinic)
    if not sees_all and payment.requested_by_id != current_user.id:
        abort(403)
    return payment


def _detail_page(payment: PaymentRequest, form: ResendReceiptForm | None = None):
    may_resend = payment.is_settled and can(current_user, Permission.RESEND_RECEIPT, payment)
    if may_resend and form is None:
        form = ResendReceiptForm().fresh(payment.patient_email)
    return render_template(
        "ledger/detail.html",
        payment=payment,
        timeline=timeline_of(payment),
        refunds=refunds_of(payment),
        refund_url=_refund_url(payment),
        dashboard_url=_dashboard_url(payment),
        form=form if may_resend else None,
    )


def _refund_url(payment: PaymentRequest) -> str | None:
    """The refund form, once that feature is in: for those who may refund what remains."""
    if "refunds.new" not in current_app.view_functions or payment.amount_remaining <= 0:
        return None
    if not payment.is_settled or not can(current_user, Permission.REFUND_PAYMENT, payment):
        return None
    return url_for("refunds.new", payment_id=payment.id)


def _dashboard_url(payment: PaymentRequest) -> str | None:
    if not payment.payment_intent_id:
        return None
    if not can(current_user, Permission.VIEW_CLINIC_PAYMENTS, payment.clinic):
        return None
    stripe_api = StripeApi.for_app()
    return stripe_api.payment_dashboard_url(payment.stripe_account_id, payment.payment_intent_id)


@blueprint.route("/<int:payment_id>")
@login_required
def detail(payment_id: int):
    return _detail_page(_visible_payment(payment_id))


@blueprint.route("/<int:payment_id>/receipt", methods=["POST"])
@login_required
@limiter.limit("20 per minute")
def resend(payment_id: int):
    payment = _visible_payment(payment_id)
    require(Permission.RESEND_RECEIPT, payment)
    if not payment.is_settled:
        flash(_("Only a paid payment has a receipt to send."), "error")
        return redirect(url_for("ledger.detail", payment_id=payment.id), code=303)
    form = ResendReceiptForm()
    if not form.validate_on_submit():
        return _detail_page(payment, form), 400
    recipient = form.email.data.strip()
    queued = resend_receipt(payment, recipient, form.resend_key.data, current_user)
    db.session.commit()
    if queued is None:
        flash(_("That receipt was already sent to %(email)s.", email=recipient), "info")
    else:
        flash(_("The receipt is on its way to %(email)s.", email=recipient), "success")
    return redirect(url_for("ledger.detail", payment_id=payment.id), code=303)


@blueprint.route("/clinics/<int:clinic_id>/time-zone", methods=["GET", "POST"])
@login_required
def time_zone(clinic_id: int):
    clinic = db.session.get(Clinic, clinic_id)
    require(Permission.MANAGE_CLIENT_PAYMENTS, clinic)
    form = ClinicTimeZoneForm(time_zone=clinic.time_zone)
    if request.method == "GET" or not form.validate_on_submit():
        status = 200 if request.method == "GET" else 400
        return render_template("ledger/time_zone.html", clinic=clinic, form=form), status
    before, clinic.time_zone = clinic.time_zone, form.time_zone.data
    if before != clinic.time_zone:
        record_audit("clinic.time_zone_changed", clinic, before=before, after=clinic.time_zone)
    db.session.commit()
    flash(
        _("%(clinic)s now counts its days in %(zone)s.", clinic=clinic.name, zone=clinic.time_zone),
        "success",
    )
    return redirect(url_for("client_payments.clinic", clinic_id=clinic.id), code=303)
