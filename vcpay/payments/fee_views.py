"""The fee before joining's routes, by audience: the patient's pay-first page under the guest
link (/join/...), and the clinician's Waive under the call screen (/calls/...).

A patient reaches the pay-first page by the call's link and having joined in this browser;
what they pay is the fee the clinic set, never anything they send.
"""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.calls.access import call_for_clinician, call_for_link, joined_participant, participant_in
from vcpay.calls.events import latest_event_id
from vcpay.calls.models import Call, Participant
from vcpay.extensions import db, limiter
from vcpay.forms import ConfirmForm
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import StripeApiError
from vcpay.payments import fees, requesting, transitions
from vcpay.payments.models import CallFee, PaymentRequest

blueprint = Blueprint("fees", __name__)

CAME_BACK = ("left", "done")  # from Checkout without paying, or paid and not yet confirmed


def _to_the_call(call: Call):
    """The call's page, which sends the patient back here while the fee is still due."""
    return redirect(url_for("guest.join", token=call.guest_token), code=303)


def _due(call: Call) -> tuple[CallFee, Participant] | None:
    """The fee and the patient who joined in this browser, while they must still pay it."""
    me = joined_participant(call)
    fee = fees.fee_of(call)
    if me is None or fee is None or fees.patient_gate(call, me) is None or not call.is_open:
        return None
    return fee, me


@blueprint.route("/join/<token>/fee", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def fee_page(token: str):
    """The pay-first page; Pay now (a POST) goes to Stripe Checkout."""
    call = call_for_link(token)
    if (due := _due(call)) is None:
        return _to_the_call(call)
    fee, me = due
    if request.method == "GET":
        return _page(call, fee, me, request.args.get("back"))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if fees.status_of(call, me) != fees.FeeStatus.DUE:  # being confirmed: nothing to pay
        return _page(call, fee, me, None)
    try:
        payment = fees.checkout_for(call, fee, me, StripeApi.for_app())
    except StripeApiError as error:
        db.session.rollback()
        return _page(call, fee, me, None, error=requesting.not_created(error).message), 503
    except requesting.PaymentRefused as refused:
        db.session.rollback()
        return _page(call, fee, me, None, error=refused.message), 409
    payment.patient_locale = str(get_locale())  # the receipt follows the patient's language
    db.session.commit()
    return redirect(payment.checkout_url, code=303)


def _page(call: Call, fee: CallFee, me: Participant, back: str | None, error: str = ""):
    return render_template(
        "payments/fee.html",
        call=call,
        fee=fee,
        me=me,
        status=fees.status_of(call, me),
        latest=fees.latest_payment(call, me),
        back=back if back in CAME_BACK else None,
        error=error,
        last_event_id=latest_event_id(call.id),
    )


def _fee_payment(call: Call, request_key: str) -> PaymentRequest:
    found = requesting.request_in_call(call, request_key)
    if found is None or not found.pay_first:
        abort(404)
    return found


@blueprint.route("/join/<token>/fee/<request_key>/done")
def fee_done(token: str, request_key: str):
    """Where Stripe sends the patient after paying: Stripe is asked (the redirect proves
    nothing), then the call if the fee is paid, else the pay-first page saying why."""
    call = call_for_link(token)
    payment = _fee_payment(call, request_key)
    if payment.is_open and request.args.get("session_id") == payment.checkout_session_id:
        try:
            transitions.sync_with_stripe(payment, StripeApi.for_app())
            db.session.commit()
        except StripeApiError:
            db.session.rollback()  # the webhook will tell; the page moves on by itself
    if _due(call) is None:
        return _to_the_call(call)
    return redirect(url_for("fees.fee_page", token=token, back="done"), code=303)


@blueprint.route("/join/<token>/fee/<request_key>/left")
def fee_left(token: str, request_key: str):
    """The patient went back from Checkout without paying."""
    call = call_for_link(token)
    _fee_payment(call, request_key)
    return redirect(url_for("fees.fee_page", token=token, back="left"), code=303)


@blueprint.route(
    "/calls/<int:call_id>/participants/<int:participant_id>/waive-fee", methods=["POST"]
)
@login_required
def waive_fee(call_id: int, participant_id: int):
    """The clinician lets a patient into the call without paying its fee."""
    call = call_for_clinician(call_id)
    patient = participant_in(call, participant_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if fees.waive(call, patient, current_user):
        db.session.commit()
        _close_checkout(call, patient)
        flash(_("Fee waived: %(name)s sees the call now.", name=patient.display_name), "success")
    else:
        flash(_("Nothing to waive: %(name)s owes no fee.", name=patient.display_name), "info")
    return redirect(url_for("calls.screen", call_id=call.id), code=303)


def _close_checkout(call: Call, patient: Participant) -> None:
    """A waived fee is not charged: a Checkout page of it still open is closed (if the
    patient has just paid, it stays paid). If Stripe cannot be reached, it expires."""
    stripe_api = StripeApi.for_app()
    for payment in fees.open_payments(call, patient):
        try:
            transitions.cancel_request(payment, current_user, stripe_api)
            db.session.commit()
        except StripeApiError:
            db.session.rollback()
