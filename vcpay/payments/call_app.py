"""Request Payment, an app in the call's Apps & Tools: what the clinician and the patient see."""

from flask import Flask
from flask_babel import lazy_gettext as _l

from vcpay.calls.apps import CallApp, Panel, add_call_app
from vcpay.calls.models import Call, Participant
from vcpay.calls.services import patients
from vcpay.payments import payers, requesting
from vcpay.payments.forms import RequestPaymentForm
from vcpay.payments.models import PaymentState
from vcpay.people.models import User

KEY = "request-payment"
# The fields a refused form shows again as they were sent.
SENT_BACK = ("amount", "description", "payer", "request_key")


def tool_context(call: Call, clinician: User, state: dict) -> dict:
    """The form, or why it cannot be used here. ``state`` comes from the view that refused a
    request: the values sent, the message, the field at fault, and the open request the
    same amount and description would repeat."""
    return {
        "payment_form": _form(state.get("values")),
        "payment_error": state.get("error"),
        "payment_error_field": state.get("field"),
        "payment_repeat_of": state.get("repeat_of"),
        "unavailable": requesting.why_payments_unavailable(call.clinic, call.clinician),
        "patients": patients(call),
    }


def _form(sent: dict | None) -> RequestPaymentForm:
    if not sent or not sent.get("request_key"):
        return RequestPaymentForm().fresh()
    return RequestPaymentForm(formdata=None, data={k: sent.get(k, "") for k in SENT_BACK})


def staff_context(call: Call, clinician: User) -> dict:
    requests = requesting.requests_in_call(call)
    return {
        "requests": requests,
        "patients": patients(call),
        "recognitions": payers.recognitions_offered(call, requests),
        # Paid, and the clinician has not dismissed the popup: shown again on every load.
        "popups": [r for r in requests if r.state == PaymentState.PAID and not r.acknowledged_at],
    }


def patient_context(call: Call, patient: Participant) -> dict:
    return {"requests": requesting.requests_in_call(call), "me": patient}


REQUEST_PAYMENT = CallApp(
    key=KEY,
    name=_l("Request Payment"),
    tool=Panel("payments/_tool.html", tool_context),
    staff_panel=Panel("payments/_staff_panel.html", staff_context),
    patient_panel=Panel("payments/_patient_panel.html", patient_context),
    beside_participant="payments/_beside_participant.html",
)


def register_call_app(app: Flask) -> None:
    add_call_app(app, REQUEST_PAYMENT)
