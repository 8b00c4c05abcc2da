"""Saved cards, an app in the call: the offer to save a card a patient is sent to when they
join (``saved_cards.patient_gate``), and the clinician's Charge saved card tool."""

from flask import Flask
from flask_babel import lazy_gettext as _l

from vcpay.calls.apps import CallApp, add_call_app
from vcpay.calls.models import Call
from vcpay.payments import saved_cards


def join_notice(call: Call) -> str | None:
    if not saved_cards.offered(call):
        return None
    return str(
        _l(
            "%(clinic)s offers to keep a card for charges after the call; you may skip it.",
            clinic=call.clinic.name,
        )
    )


SAVED_CARDS = CallApp(
    key="saved-cards",
    name=_l("Charge saved card"),
    patient_gate=saved_cards.patient_gate,
    join_notice=join_notice,
)


def register_call_app(app: Flask) -> None:
    add_call_app(app, SAVED_CARDS)
