"""The clinician's side of a call: start or reopen it, the call screen, Request Payment."""

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.auth.sessions import current_sign_in_session
from vcpay.calls import live
from vcpay.calls.access import call_for_clinician, participant_in
from vcpay.calls.apps import call_apps
from vcpay.calls.forms import StartCallForm
from vcpay.calls.models import Call
from vcpay.calls.services import calls_of, end_call, patients, start_call
from vcpay.database import utcnow
from vcpay.enablement.forms import ConfirmForm
from vcpay.extensions import db, limiter
from vcpay.inputs import parse_id
from vcpay.integrations.stripe_gateway import StripeGateway, StripeGatewayError
from vcpay.links import public_url_for
from vcpay.payments import payers
from vcpay.payments import services as payments
from vcpay.payments.call_app import KEY
from vcpay.payments.forms import RequestPaymentForm
from vcpay.payments.models import SETTLED_STATES, PaymentRequest, PaymentState
from vcpay.people.models import Clinic, User
from vcpay.people.permissions import Permission, can, clinics_where, require
from vcpay.people.services import sign_in_session_is_live

blueprint = Blueprint("calls", __name__, url_prefix="/calls")


def _payment(call: Call, request_key: str) -> PaymentRequest:
    found = payments.request_in_call(call, request_key)
    if found is None:
        abort(404)
    return found


@blueprint.route("/")
@login_required
def index():
    clinics = clinics_where(current_user, Permission.START_CALL)
    return render_template(
        "calls/index.html",
        clinics=clinics,
        calls=calls_of(clinics),
        forms={c.id: StartCallForm(clinic_id=c.id) for c in clinics},
    )


@blueprint.route("/start", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def start():
    form = StartCallForm()
    clinic_id = parse_id(form.clinic_id.data)
    clinic = db.session.get(Clinic, clinic_id) if clinic_id is not None else None
    require(Permission.START_CALL, clinic)
    if not form.validate_on_submit():
        flash(_first_error(form), "error")
        return redirect(url_for("calls.index"), code=303)
    call = start_call(clinic, current_user, form.title.data or "")
    return redirect(url_for("calls.screen", call_id=call.id), code=303)


def _first_error(form: StartCallForm) -> str:
    errors = form.title.errors or form.errors.get("csrf_token") or []
    return str(errors[0]) if errors else _("The form expired; please try again.")


@blueprint.route("/<int:call_id>")
@login_required
def screen(call_id: int):
    return call_screen(call_for_clinician(call_id))


def call_screen(call: Call, state: dict[str, dict] | None = None, tools_open: bool = False):
    """The clinician's call screen with its apps. An app's view that refused something shows
    it again with ``state`` for its tool (by app key), and ``tools_open``."""
    return render_template(
        "calls/call.html",
        call=call,
        guest_link=public_url_for("guest.join", token=call.guest_token),
        apps=call_apps().for_staff(call, current_user._get_current_object(), state),
        tools_open=tools_open,
        patients=patients(call),
        last_event_id=live.latest_event_id(call.id),
    )


@blueprint.route("/<int:call_id>/panel")
@login_required
def panel(call_id: int):
    """The live parts of the screen, re-rendered when an event arrives."""
    call = call_for_clinician(call_id)
    return render_template(
        "calls/_staff_panel.html",
        call=call,
        apps=call_apps().for_staff(call, current_user._get_current_object(), tools=False),
        patients=patients(call),
    )


@blueprint.route("/<int:call_id>/events")
@login_required
def events(call_id: int):
    call = call_for_clinician(call_id)
    user_id, sign_in_id = current_user.id, current_sign_in_session().id
    return live.stream_response(
        call,
        live.STAFF_AUDIENCES,
        lambda c: _still_clinician(c, user_id, sign_in_id),
        viewer=f"person:{user_id}",
    )


def _still_clinician(call: Call, user_id: int, sign_in_id: int) -> bool:
    """Still signed in (not signed out, nor their password changed) and still a clinician here."""
    if not sign_in_session_is_live(sign_in_id):
        return False
    user = db.session.get(User, user_id)
    return user is not None and user.is_active and can(user, Permission.START_CALL, call)


@blueprint.route("/<int:call_id>/end", methods=["POST"])
@login_required
def end(call_id: int):
    call = call_for_clinician(call_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    end_call(call)
    flash(_("The call has ended. The patient's link stops working shortly."), "success")
    return redirect(url_for("calls.index"), code=303)


@blueprint.route("/<int:call_id>/payment-requests", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def request_payment(call_id: int):
    call = call_for_clinician(call_id)
    form = RequestPaymentForm()
    if not form.validate_on_submit():
        return _refused(call, _("The form expired; please try again."), None)
    try:
        made = payments.request_payment(
            call, current_user, form.amount.data or "", form.description.data or "",
            form.request_key.data or "", StripeGateway.for_app(), form.payer.data or "",
        )  # fmt: skip
    except payments.PaymentRefused as refused:
        return _refused(call, refused.message, refused.field)
    if _wants_json():
        return jsonify(request=made.request.request_key, repeated=made.repeated), 201
    if not made.repeated:
        flash(_("Payment requested: the patient sees it now."), "success")
    return redirect(url_for("calls.screen", call_id=call.id) + "#request-payment", code=303)


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _refused(call: Call, message: str, field: str | None):
    if _wants_json():
        return jsonify(error=message, field=field), 400
    state = {KEY: {"form": RequestPaymentForm(), "error": message, "field": field}}
    return call_screen(call, state, tools_open=True), 400


@blueprint.route("/<int:call_id>/payment-requests/<request_key>/cancel", methods=["POST"])
@login_required
def cancel_payment(call_id: int, request_key: str):
    call = call_for_clinician(call_id)
    payment = _payment(call, request_key)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        payments.cancel_request(payment, current_user, StripeGateway.for_app())
    except StripeGatewayError as error:
        db.session.rollback()
        flash(
            _("Stripe could not be reached to cancel it; it is still open: %(why)s", why=error),
            "error",
        )
        return redirect(url_for("calls.screen", call_id=call.id), code=303)
    db.session.commit()
    flash(*_cancel_outcome(payment))
    return redirect(url_for("calls.screen", call_id=call.id), code=303)


def _cancel_outcome(payment: PaymentRequest) -> tuple[str, str]:
    """What the clinician is told: a stale screen may offer Cancel for a request that has
    since been paid, or has expired or failed."""
    if payment.state == PaymentState.CANCELLED:
        return _("Payment request cancelled."), "success"
    if payment.state == PaymentState.PROCESSING or payment.state in SETTLED_STATES:
        return _("It could not be cancelled: the patient has already paid."), "warning"
    return _("Nothing to cancel: the request is no longer open."), "info"


@blueprint.route("/<int:call_id>/payment-requests/<request_key>/acknowledge", methods=["POST"])
@login_required
def acknowledge_payment(call_id: int, request_key: str):
    """The clinician dismissed the "payment received" popup."""
    call = call_for_clinician(call_id)
    payment = _payment(call, request_key)
    if payment.acknowledged_at is None and payment.state != PaymentState.REQUESTED:
        payment.acknowledged_at = utcnow()
        db.session.commit()
    return jsonify(acknowledged=True)


@blueprint.route("/<int:call_id>/participants/<int:participant_id>/recognise", methods=["POST"])
@login_required
def recognise_participant(call_id: int, participant_id: int):
    """ "This is Pat Citizen": the clinician says a patient who rejoined is the one asked to pay."""
    call = call_for_clinician(call_id)
    patient = participant_in(call, participant_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    payer = participant_in(call, parse_id(request.form.get("person")))
    if not payers.is_offered(call, payments.requests_in_call(call), patient, payer):
        flash(
            _(
                "%(name)s cannot be recognised as %(payer)s: only a patient who joined after "
                "%(payer)s was asked to pay can be.",
                name=patient.display_name,
                payer=payer.display_name,
            ),
            "error",
        )
        return call_screen(call), 400
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
    return redirect(url_for("calls.screen", call_id=call.id), code=303)
