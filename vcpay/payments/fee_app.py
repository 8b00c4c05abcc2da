"""Fee before joining, an app in the call: its fields on the form that starts a call, the
fee and each patient's standing with it on the clinician's screen, and the pay-first page a
patient is sent to before the call (``fees.patient_gate``)."""

from flask import Flask
from flask_babel import lazy_gettext as _l

from vcpay.calls.apps import CallApp, Panel, StartFields, add_call_app
from vcpay.calls.models import Call
from vcpay.calls.services import patients
from vcpay.payments import fees
from vcpay.people.models import User

KEY = "fee-before-joining"


def staff_context(call: Call, clinician: User) -> dict:
    fee = fees.fee_of(call)
    requests = fees.fee_requests(call)
    return {
        "fee": fee,
        "fee_statuses": {p.id: fees.status_of(call, p, requests) for p in patients(call)},
    }


def _has_fee(call: Call, person) -> bool:
    return fees.fee_of(call) is not None


FEE_BEFORE_JOINING = CallApp(
    key=KEY,
    name=_l("Fee before joining"),
    staff_panel=Panel("payments/_fee_staff_panel.html", staff_context),
    beside_participant="payments/_fee_beside_participant.html",
    available=_has_fee,
    start_fields=StartFields(
        "payments/_fee_start_fields.html",
        fees.start_fields_context,
        fees.set_fee,
        fields=(fees.AMOUNT_FIELD, fees.DESCRIPTION_FIELD),
    ),
    patient_gate=fees.patient_gate,
    join_notice=fees.join_notice,
)


def register_call_app(app: Flask) -> None:
    add_call_app(app, FEE_BEFORE_JOINING)
