"""Request Payment's routes, by audience. Their paths sit under the call they belong to: the
clinician's under the call screen (/calls/...), the patient's under the guest link (/join/...).

The clinician reaches a call by permission, the patient by its guest link; paying and the
receipt need more: being the participant asked to pay, joined in this browser (vcpay.calls.access).
"""

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.calls.access import call_for_clinician, call_for_link, joined_participant, participant_in
from vcpay.calls.apps import keep_tool_state
from vcpay.calls.models import Call
from vcpay.database import utcnow
from vcpay.extensions import db, limiter
from vcpay.forms import ConfirmForm
from vcpay.inputs import parse_id
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import StripeApiError
from vcpay.payments import payers, receipts, requesting, transitions
from vcpay.payments.call_app import KEY, SENT_BACK
from vcpay.payments.forms import RequestPaymentForm
from vcpay.payments.models import SETTLED_STATES, PaymentRequest, PaymentState

blueprint = Blueprint("payments", __name__)


def _payment(call: Call, request_key: str) -> PaymentRequest:
    found = requesting.request_in_call(call, request_key)
    if found is None:
        abort(404)
    return found


def _back_to_the_call(call: Call, anchor: str = ""):
    return redirect(url_for("calls.screen", call_id=call.id) + anchor, code=303)


# The clinician's, from the call screen.


@blueprint.route("/calls/<int:call_id>/payment-requests", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def request_payment(call_id: int):
    call = call_for_clinician(call_id)
    form = RequestPaymentForm()
    if not form.validate_on_submit():
        return _refused(call, _("The form expired; please try again."), None)
    try:
        asked = requesting.PaymentAsked(
            amount=form.amount.data or "",
            description=form.description.data or "",
            request_key=form.request_key.data or "",
            payer=form.payer.data or "",
            confirm_repeat=form.confirm_repeat.data or "",
        )
        made = requesting.request_payment(call, current_user, asked, StripeApi.for_app())
        db.session.commit()
    except requesting.RepeatUnconfirmed as repeat:
        return _ask_to_confirm(call, repeat)
    except requesting.PaymentRefused as refused:
        return _refused(call, refused.message, refused.field)
    if _wants_json():
        return jsonify(request=made.request.request_key, repeated=made.repeated), 201
    if not made.repeated:
        flash(_("Payment requested: the patient sees it now."), "success")
    return _back_to_the_call(call, f"#{KEY}")


@blueprint.route("/calls/<int:call_id>/payment-requests", methods=["GET"])
@login_required
def payment_requests(call_id: int):
    """The form's address opened (a bookmark, an old tab): the call screen it belongs to."""
    return _back_to_the_call(call_for_clinician(call_id), f"#{KEY}")


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _refused(call: Call, message: str, field: str | None):
    if _wants_json():
        return jsonify(error=message, field=field), 400
    return _back_with(call, {"error": message, "field": field})


def _ask_to_confirm(call: Call, repeat: requesting.RepeatUnconfirmed):
    """The same amount and description are still open: nothing was made. The form comes
    back as sent, with the box that confirms a second payment ticked, so sending it again
    makes one; a JSON client sends ``confirm_repeat`` set to ``open_request``."""
    if _wants_json():
        answer = jsonify(error=repeat.message, field=repeat.field, open_request=repeat.open_request)
        return answer, 409
    state = {"error": repeat.message, "field": repeat.field, "repeat_of": repeat.open_request}
    return _back_with(call, state)


def _back_with(call: Call, state: dict):
    """Back to the call screen (POST, redirect, GET), which shows the form as sent and why
    it was refused, once: its address stays the screen's and a reload sends nothing."""
    sent = {name: str(request.form.get(name, ""))[:200] for name in SENT_BACK}
    keep_tool_state(call, KEY, {**state, "values": sent})
    return _back_to_the_call(call, f"#{KEY}")


@blueprint.route("/calls/<int:call_id>/payment-requests/<request_key>/cancel", methods=["POST"])
@login_required
def cancel_payment(call_id: int, request_key: str):
    call = call_for_clinician(call_id)
    payment = _payment(call, request_key)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        transitions.cancel_request(payment, current_user, StripeApi.for_app())
    except StripeApiError as error:
        db.session.rollback()
        flash(
            _(
                "Stripe could not be reached to cancel it; it is still open: %(why)s",
                why=error.words,
            ),
            "error",
        )
        return _back_to_the_call(call)
    db.session.commit()
    flash(*_cancel_outcome(payment))
    return _back_to_the_call(call)


def _cancel_outcome(payment: PaymentRequest) -> tuple[str, str]:
    """What the clinician is told: a stale screen may offer Cancel for a request that has
    since been paid, or has expired or failed."""
    if payment.state == PaymentState.CANCELLED:
        return _("Payment request cancelled."), "success"
    if payment.state == PaymentState.PROCESSING or payment.state in SETTLED_STATES:
        return _("It could not be cancelled: the patient has already paid."), "warning"
    return _("Nothing to cancel: the request is no longer open."), "info"


@blueprint.route(
    "/calls/<int:call_id>/payment-requests/<request_key>/acknowledge", methods=["POST"]
)
@login_required
def acknowledge_payment(call_id: int, request_key: str):
    """The clinician dismissed the "payment received" popup."""
    call = call_for_clinician(call_id)
    payment = _payment(call, request_key)
    if payment.acknowledged_at is None and payment.state != PaymentState.REQUESTED:
        payment.acknowledged_at = utcnow()
        db.session.commit()
    return jsonify(acknowledged=True)


@blueprint.route(
    "/calls/<int:call_id>/participants/<int:participant_id>/recognise", methods=["POST"]
)
@login_required
def recognise_participant(call_id: int, participant_id: int):
    """ "This is Pat Citizen": the clinician says a patient who rejoined is the one asked to pay."""
    call = call_for_clinician(call_id)
    patient = participant_in(call, participant_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    payer = participant_in(call, parse_id(request.form.get("person")))
    if not payers.is_offered(call, requesting.requests_in_call(call), patient, payer):
        flash(
            _(
                "%(name)s cannot be recognised as %(payer)s: only a patient who joined after "
                "%(payer)s was asked to pay can be.",
                name=patient.display_name,
                payer=payer.display_name,
            ),
            "error",
        )
        return _back_to_the_call(call)
    payers.recognise(patient, payer, current_user)
    db.session.commit()
    flash(
        _(
            "%(name)s is recognised as %(payer)s: they can pay what %(payer)s was asked to pay.",
            name=patient.display_name,
            payer=payer.display_name,
        ),
        "success",
    )
    return _back_to_the_call(call)


# The patient's, from the guest link, and the receipt email's own link.


@blueprint.route("/join/<token>/payments/<request_key>/pay", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def pay(token: str, request_key: str):
    """Pay now (a POST) goes to Stripe Checkout while the request is open and this person may
    pay it; a GET only shows the payment and changes nothing. Pressing Pay now on a request
    asked of nobody in particular makes this person its payer, unless someone was first."""
    call = call_for_link(token)
    payment = _payment(call, request_key)
    if request.method == "POST" and _pays_now(call, payment):
        payment.patient_locale = str(get_locale())  # the receipt follows the patient's language
        db.session.commit()
        return redirect(payment.checkout_url, code=303)
    return _payment_page(call, payment)


def _pays_now(call: Call, payment: PaymentRequest) -> bool:
    me = joined_participant(call)
    may_pay = (
        payment.state == PaymentState.REQUESTED
        and bool(payment.checkout_url)
        and payment.payable_by(me)
    )
    return may_pay and payers.take_on(payment, me)


def _payment_page(call: Call, payment: PaymentRequest, **flags):
    """What became of a payment. Pay now and the receipt (email, card) are only for the
    participant who may pay it, joined in this browser: the call's link is not enough."""
    mine = payment.payable_by(joined_participant(call))
    page = render_template("payments/payment.html", call=call, payment=payment, mine=mine, **flags)
    private = payment.state == PaymentState.REQUESTED or payment.state in SETTLED_STATES
    return page, 403 if private and not mine else 200


@blueprint.route("/join/<token>/payments/<request_key>/done")
def payment_done(token: str, request_key: str):
    """Where Stripe sends the patient after paying. The redirect proves nothing; asking
    Stripe does, so the page applies what Stripe says without waiting for the webhook."""
    call = call_for_link(token)
    payment = _payment(call, request_key)
    if payment.is_open and request.args.get("session_id") == payment.checkout_session_id:
        _ask_stripe(payment)
    return _payment_page(call, payment)


def _ask_stripe(payment: PaymentRequest) -> None:
    try:
        transitions.sync_with_stripe(payment, StripeApi.for_app())
    except StripeApiError:
        db.session.rollback()
        return  # the webhook will tell; the page says the payment is being confirmed
    db.session.commit()


@blueprint.route("/join/<token>/payments/<request_key>/left")
def payment_left(token: str, request_key: str):
    """The patient went back from Checkout without paying."""
    call = call_for_link(token)
    payment = _payment(call, request_key)
    return _payment_page(call, payment, left=True)


@blueprint.route("/join/receipts/<signed>")
def receipt(signed: str):
    """The receipt email's own link: it works without the call, long after it has ended."""
    try:
        payment = receipts.paid_request_for(signed)
    except receipts.ReceiptLinkInvalid as invalid:
        return render_template("payments/receipt.html", problem=invalid.message), 404
    return render_template("payments/receipt.html", payment=payment)
