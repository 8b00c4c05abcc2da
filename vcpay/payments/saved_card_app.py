"""Saved cards, an app in the call: the offer to save a card a patient is sent to when they
join (``saved_cards.patient_gate``), and the clinician's Charge saved card tool."""

import secrets

from flask import Flask
from flask_babel import lazy_gettext as _l

from vcpay.calls.apps import CallApp, Panel, add_call_app
from vcpay.calls.models import Call
from vcpay.payments import requesting, saved_cards
from vcpay.people.models import User


def join_notice(call: Call) -> str | None:
    if not saved_cards.offered(call):
        return None
    return str(
        _l(
            "%(clinic)s offers to keep a card for charges after the call; you may skip it.",
            clinic=call.clinic.name,
        )
    )


def tool_context(call: Call, clinician: User, state: dict) -> dict:
    """The call's saved cards to charge, during or after the call; a new key each time."""
    return {
        "cards": saved_cards.usable_cards(call),
        "unavailable": requesting.why_payments_unavailable(call.clinic, call.clinician),
        "request_key": secrets.token_urlsafe(18),
    }


def _allowed_or_used(call: Call, person) -> bool:
    """In Apps & Tools where the clinic lets patients save cards, or a card was saved."""
    return call.clinic.saved_cards_allowed or bool(saved_cards.usable_cards(call))


SAVED_CARDS = CallApp(
    key="saved-cards",
    name=_l("Charge saved card"),
    tool=Panel("payments/_saved_card_tool.html", tool_context),
    available=_allowed_or_used,
    patient_gate=saved_cards.patient_gate,
    join_notice=join_notice,
)


def register_call_app(app: Flask) -> None:
    add_call_app(app, SAVED_CARDS)
