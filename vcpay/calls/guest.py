"""The patient's side of a call: join with the link and a name, see requests live, pay.

The guest token in the link is the only key: it reaches this one call, and stops working
when the call ends (after a short grace, so a payment under way can finish). Paying and the
receipt need more: being the participant asked to pay, joined in this browser.
"""

from flask import (
    Blueprint,
    abort,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import get_locale

from vcpay.calls import live
from vcpay.calls.access import call_for_link, joined_participant, remember_joined
from vcpay.calls.apps import call_apps
from vcpay.calls.forms import JoinForm
from vcpay.calls.models import Call, Participant
from vcpay.calls.services import guest_link_works, join_as_patient
from vcpay.extensions import db, limiter
from vcpay.integrations.stripe_gateway import StripeGateway, StripeGatewayError
from vcpay.payments import receipts
from vcpay.payments import services as payments
from vcpay.payments.models import SETTLED_STATES, PaymentRequest, PaymentState

blueprint = Blueprint("guest", __name__, url_prefix="/join")


def _payment(call: Call, request_key: str) -> PaymentRequest:
    found = payments.request_in_call(call, request_key)
    if found is None:
        abort(404)
    return found


@blueprint.route("/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def join(token: str):
    call = call_for_link(token)
    if (me := joined_participant(call)) is not None:
        return _screen(call, me)
    form = JoinForm()
    if not call.is_open:
        return render_template("guest/message.html", call=call, ended=True)
    if form.validate_on_submit():
        remember_joined(call, join_as_patient(call, form.display_name.data))
        return redirect(url_for("guest.join", token=token), code=303)
    return render_template("guest/join.html", call=call, form=form), 400 if form.errors else 200


def _screen(call: Call, me: Participant):
    return render_template(
        "guest/call.html",
        call=call,
        me=me,
        apps=call_apps().for_patient(call, me),
        last_event_id=live.latest_event_id(call.id),
    )


@blueprint.route("/<token>/panel")
def panel(token: str):
    call = call_for_link(token)
    me = joined_participant(call)
    if me is None:
        abort(403)
    apps = call_apps().for_patient(call, me)
    return render_template("guest/_panel.html", call=call, apps=apps)


@blueprint.route("/<token>/events")
def events(token: str):
    call = call_for_link(token)
    me = joined_participant(call)
    if me is None:
        abort(403)
    return live.stream_response(
        call, live.PATIENT_AUDIENCES, guest_link_works, viewer=f"guest:{me.id}"
    )


@blueprint.route("/<token>/payments/<request_key>/pay", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def pay(token: str, request_key: str):
    """Pay now (a POST) goes to Stripe Checkout while the request is open and this person may
    pay it; a GET only shows the payment and changes nothing."""
    call = call_for_link(token)
    payment = _payment(call, request_key)
    if request.method == "POST" and _may_pay_now(call, payment):
        payment.patient_locale = str(get_locale())  # the receipt follows the patient's language
        db.session.commit()
        return redirect(payment.checkout_url, code=303)
    return _payment_page(call, payment)


def _may_pay_now(call: Call, payment: PaymentRequest) -> bool:
    return (
        payment.state == PaymentState.REQUESTED
        and bool(payment.checkout_url)
        and payment.payable_by(joined_participant(call))
    )


def _payment_page(call: Call, payment: PaymentRequest, **flags):
    """What became of a payment. Pay now and the receipt (email, card) are only for the
    participant who may pay it, joined in this browser: the call's link is not enough."""
    mine = payment.payable_by(joined_participant(call))
    page = render_template("payments/payment.html", call=call, payment=payment, mine=mine, **flags)
    private = payment.state == PaymentState.REQUESTED or payment.state in SETTLED_STATES
    return page, 403 if private and not mine else 200


@blueprint.route("/<token>/payments/<request_key>/done")
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
        payments.sync_with_stripe(payment, StripeGateway.for_app())
    except StripeGatewayError:
        db.session.rollback()
        return  # the webhook will tell; the page says the payment is being confirmed
    db.session.commit()


@blueprint.route("/<token>/payments/<request_key>/left")
def payment_left(token: str, request_key: str):
    """The patient went back from Checkout without paying."""
    call = call_for_link(token)
    payment = _payment(call, request_key)
    return _payment_page(call, payment, left=True)


@blueprint.route("/receipts/<signed>")
def receipt(signed: str):
    """The receipt email's own link: it works without the call, long after it has ended."""
    try:
        payment = receipts.paid_request_for(signed)
    except receipts.ReceiptLinkInvalid as invalid:
        return render_template("payments/receipt.html", problem=invalid.message), 404
    return render_template("payments/receipt.html", payment=payment)
