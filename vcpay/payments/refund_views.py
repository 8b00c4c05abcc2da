"""Refunding a payment: the form, for the admins of its clinic and organisation.

A clinician of the clinic is refused (403); anyone of another organisation finds nothing
(404). The payment detail page links here; after a refund the admin goes back to it.
"""

from decimal import Decimal

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.clinic_clocks import clinic_time
from vcpay.extensions import db, limiter
from vcpay.integrations.stripe_api import StripeApi
from vcpay.payments import refunds
from vcpay.payments.amounts import format_amount
from vcpay.payments.forms import RefundForm
from vcpay.payments.models import PaymentRefund, PaymentRequest, RefundState
from vcpay.people.permissions import Permission, require

blueprint = Blueprint("refunds", __name__)

# Where an admin goes after refunding: the payment's detail page, where the back office has it.
DETAIL_ENDPOINT = "ledger.detail"


def _payment(payment_id: int) -> PaymentRequest:
    payment = db.session.get(PaymentRequest, payment_id)
    require(Permission.REFUND_PAYMENT, payment)
    return payment


@blueprint.route("/payments/<int:payment_id>/refund", methods=["GET"])
@login_required
def new(payment_id: int):
    payment = _payment(payment_id)
    form = RefundForm().fresh(_plain_amount(payment.amount_remaining))
    return _page(payment, form)


@blueprint.route("/payments/<int:payment_id>/refund", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def make(payment_id: int):
    payment = _payment(payment_id)
    form = RefundForm()
    if not form.validate_on_submit():
        return _page(payment, RefundForm(), _("The form expired; please try again."), None), 400
    asked = refunds.RefundAsked(
        amount=form.amount.data or "",
        whole=form.extent.data == "full",
        reason=form.reason.data or "",
        refund_key=form.refund_key.data or "",
    )
    try:
        made = refunds.refund_payment(payment, asked, current_user, StripeApi.for_app())
        db.session.commit()
    except refunds.RefundRefused as refused:
        db.session.rollback()
        if refused.by_stripe:
            form.new_key()  # Stripe keeps its answer to the old key: a changed form needs one
        status = 503 if refused.unavailable else 400
        return _page(payment, form, refused.message, refused.field), status
    flash(*_outcome(made))
    return redirect(_after_refund(payment), code=303)


def _page(payment: PaymentRequest, form: RefundForm, error: str = "", field: str | None = None):
    return render_template(
        "payments/refund.html",
        payment=payment,
        form=form,
        error=error,
        field=field,
        refunds=[_shown(row) for row in refunds.refunds_of(payment)],
        paid_at=_clinic_time(payment, payment.paid_at),
        payment_url=_payment_url(payment),
    )


def _payment_url(payment: PaymentRequest) -> str | None:
    """The payment's own page, where the back office has it: the way back from the form."""
    if DETAIL_ENDPOINT not in current_app.view_functions:
        return None
    return url_for(DETAIL_ENDPOINT, payment_id=payment.id)


def _outcome(made: refunds.Refunded) -> tuple[str, str]:
    refund = made.refund
    amount = format_amount(refund.amount, refund.payment_request.currency)
    if made.repeated:
        return _("This refund was already asked for; it was not made twice."), "info"
    if refund.state == RefundState.SUCCEEDED:
        return _("Refunded %(amount)s to the patient's card.", amount=amount), "success"
    return (
        _("Stripe is processing the refund of %(amount)s; its state shows here.", amount=amount),
        "success",
    )


def _after_refund(payment: PaymentRequest) -> str:
    return _payment_url(payment) or url_for("refunds.new", payment_id=payment.id)


def _plain_amount(cents: int) -> str:
    """What the amount field starts with: 20.00, as the parser reads it in any language."""
    return f"{Decimal(cents) / 100:.2f}"


def _clinic_time(payment: PaymentRequest, moment) -> str:
    return clinic_time(moment, payment.clinic)


def _shown(row: PaymentRefund) -> dict:
    return {
        "amount": row.amount,
        "reason": row.shown_reason,
        "state": row.state,
        "failure_reason": row.failure_reason,
        "by": row.requested_by.name if row.requested_by else "",
        "when": _clinic_time(row.payment_request, row.created_at),
    }
