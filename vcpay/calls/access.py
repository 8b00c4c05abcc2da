"""Who reaches a call: the clinician by permission, the patient by the guest link.

The guest token in the link is the only key a patient has: it reaches this one call, and stops
working when the call ends (after a short grace, so a payment under way can finish). Some
things need more: being a participant who joined in this browser. The views of calls and of
the apps in a call find calls and people here.
"""

from flask import abort, make_response, render_template, session

from vcpay.calls.models import Call, Participant
from vcpay.calls.services import call_for_guest
from vcpay.extensions import db
from vcpay.people.permissions import Permission, require

SESSION_KEY = "guest_participants"  # call id -> participant id, for this browser


def call_for_clinician(call_id: int) -> Call:
    """The call, for a clinician of its clinic; 404 or 403 for anyone else."""
    call = db.session.get(Call, call_id)
    require(Permission.START_CALL, call)
    return call


def participant_in(call: Call, participant_id: int | None) -> Participant:
    """One of the call's participants, or 404."""
    found = db.session.get(Participant, participant_id) if participant_id else None
    if found is None or found.call_id != call.id:
        abort(404)
    return found


def call_for_link(token: str) -> Call:
    """The call a guest link opens, or the page saying the link does not work (404)."""
    call = call_for_guest(token)
    if call is None:
        abort(make_response(render_template("guest/message.html"), 404))
    return call


def joined_participant(call: Call) -> Participant | None:
    """The participant who joined the call in this browser, if any."""
    participant_id = session.get(SESSION_KEY, {}).get(str(call.id))
    participant = db.session.get(Participant, participant_id) if participant_id else None
    return participant if participant is not None and participant.call_id == call.id else None


def remember_joined(call: Call, patient: Participant) -> None:
    joined = dict(session.get(SESSION_KEY, {}))
    joined[str(call.id)] = patient.id
    session[SESSION_KEY] = joined
