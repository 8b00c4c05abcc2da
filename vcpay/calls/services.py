"""Starting, joining and ending calls. These flush; the view that asked commits."""

from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from vcpay.calls.events import CallEventKind, record_event
from vcpay.calls.models import Audience, Call, CallState, Participant, ParticipantRole
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.people.models import Clinic, User


def start_call(clinic: Clinic, clinician: User, title: str) -> Call:
    call = Call(clinic=clinic, clinician=clinician, title=" ".join(title.split())[:120])
    db.session.add(call)
    db.session.add(
        Participant(
            call=call,
            role=ParticipantRole.CLINICIAN.value,
            display_name=clinician.name[:80],
            user_id=clinician.id,
        )
    )
    db.session.flush()
    record_event(call, CallEventKind.CALL_STARTED)
    return call


def join_as_patient(call: Call, display_name: str, locale: str = "") -> Participant:
    patient = Participant(
        call=call,
        role=ParticipantRole.PATIENT.value,
        display_name=" ".join(display_name.split()),
        locale=locale,
    )
    db.session.add(patient)
    db.session.flush()
    record_event(
        call, CallEventKind.PARTICIPANT_JOINED, name=patient.display_name, role=patient.role
    )
    return patient


def end_call(call: Call) -> None:
    if not call.is_open:
        return
    call.state = CallState.ENDED.value
    call.ended_at = utcnow()
    record_event(call, CallEventKind.CALL_ENDED)
    db.session.flush()


def clinic_tools_changed(clinic: Clinic) -> None:
    """Tell the clinician's screen of every open call in the clinic that its tools changed."""
    open_calls = db.session.scalars(
        select(Call).filter_by(clinic_id=clinic.id, state=CallState.OPEN.value)
    )
    for call in open_calls:
        record_event(call, CallEventKind.TOOLS_CHANGED, Audience.STAFF)


def guest_link_works(call: Call) -> bool:
    """Open calls, and ended ones for a short grace (the patient may be finishing a payment)."""
    if call.is_open:
        return True
    grace = timedelta(minutes=current_app.config["GUEST_LINK_GRACE_MINUTES"])
    return call.ended_at is not None and utcnow() < call.ended_at + grace


def call_for_guest(token: str) -> Call | None:
    call = db.session.scalar(select(Call).filter_by(guest_token=token))
    return call if call is not None and guest_link_works(call) else None


def calls_of(clinicians_clinics: list[Clinic], limit: int = 30) -> list[Call]:
    """The open and recent calls in the clinics where this person consults."""
    if not clinicians_clinics:
        return []
    return list(
        db.session.scalars(
            select(Call)
            .where(Call.clinic_id.in_([c.id for c in clinicians_clinics]))
            .order_by(Call.state.desc(), Call.id.desc())
            .limit(limit)
        )
    )


def patients(call: Call) -> list[Participant]:
    return [p for p in call.participants if p.role == ParticipantRole.PATIENT]
