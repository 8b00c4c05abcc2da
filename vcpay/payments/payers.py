"""Who pays a request: the first to take on one asked of nobody in particular, and the person
asked when they rejoin from another device.

Rejoining makes a new participant, and a name proves nothing (anyone in the call can type
it), so the clinician, who sees and hears them, says who they are.
"""

from sqlalchemy import update

from vcpay.audit.services import record_audit
from vcpay.calls.events import CallEventKind, record_event
from vcpay.calls.models import Call, Participant
from vcpay.calls.services import patients
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.payments.models import PaymentRequest, PaymentState
from vcpay.people.models import User

# Nothing left to pay or to see for these: nobody needs to be recognised for them.
CLOSED = frozenset({PaymentState.CANCELLED, PaymentState.EXPIRED, PaymentState.FAILED})


def take_on(request: PaymentRequest, participant: Participant) -> bool:
    """Make ``participant`` the payer of a request asked of nobody in particular, so that its
    receipt is theirs alone; whether they are its payer now. Compare and set: of two people
    pressing Pay now at once, the first is the payer and the other is not. The caller commits."""
    if request.payer_id is not None:
        return request.payable_by(participant)
    taken = db.session.execute(
        update(PaymentRequest)
        .where(PaymentRequest.id == request.id, PaymentRequest.payer_id.is_(None))
        .values(
            payer_id=participant.id,
            patient_name=participant.display_name,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(request)  # this participant's now, or whoever was first
    return taken.rowcount == 1 or request.payable_by(participant)


def recognitions_offered(call: Call, requests: list[PaymentRequest]) -> dict[int, list]:
    """For each patient who joined after a request was made of someone else, the people
    asked to pay whom the clinician may recognise them as (participant id -> payers)."""
    offered: dict[int, list[Participant]] = {}
    for request in requests:
        if request.payer is None or request.state in CLOSED:
            continue
        for patient in patients(call):
            if _may_be(patient, request):
                choices = offered.setdefault(patient.id, [])
                if all(c.person_id != request.payer.person_id for c in choices):
                    choices.append(request.payer)
    return offered


def _may_be(patient: Participant, request: PaymentRequest) -> bool:
    return (
        patient.recognised_as_id is None
        and patient.person_id != request.payer.person_id
        and patient.created_at > request.created_at
    )


def is_offered(call: Call, requests: list[PaymentRequest], patient: Participant, payer) -> bool:
    return payer in recognitions_offered(call, requests).get(patient.id, [])


def recognise(patient: Participant, payer: Participant, clinician: User | None = None) -> None:
    """Record that ``patient`` is the person ``payer`` is: they may pay what that person was
    asked to pay and see its receipt. Both screens hear of it; the caller commits."""
    person = payer.recognised_as or payer
    for earlier in patients(patient.call):
        if earlier.recognised_as_id == patient.id:  # keep one person one id, never a chain
            earlier.recognised_as = person
    patient.recognised_as = person
    db.session.flush()
    record_audit("participant.recognised", patient, actor=clinician, recognised_as=person.id)
    record_event(
        patient.call,
        CallEventKind.PARTICIPANT_RECOGNISED,
        name=patient.display_name,
        recognised_as=person.display_name,
    )
