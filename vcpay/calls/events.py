"""Call events: the kinds a call's live stream carries (their values are the wire names the
screens read), and recording one with the change it announces.

An event joins the caller's transaction; once it commits, the process's waker (``waker.py``)
hears of it, and after a web request only once the answer has gone out.
"""

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from flask import Response, current_app, g, has_request_context
from sqlalchemy import func, select

from vcpay.calls.models import Audience, Call, CallEvent
from vcpay.extensions import db
from vcpay.transactions import after_commit

if TYPE_CHECKING:
    from vcpay.calls.waker import CallWaker


class CallEventKind(StrEnum):
    CALL_STARTED = "call_started"
    CALL_ENDED = "call_ended"
    PARTICIPANT_JOINED = "participant_joined"
    PARTICIPANT_RECOGNISED = "participant_recognised"
    PAYMENT_REQUESTED = "payment_requested"
    PAYMENT_PROCESSING = "payment_processing"
    PAYMENT_EXPIRED = "payment_expired"
    PAYMENT_PAID = "payment_paid"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_REFUNDED = "payment_refunded"
    PAYMENT_CANCELLED = "payment_cancelled"
    # The clinician let a patient in without paying the call's fee before joining.
    FEE_WAIVED = "fee_waived"
    # What an app's tool offers changed outside the call (a clinic's Stripe link made or
    # removed): the clinician's screen shows the tools again.
    TOOLS_CHANGED = "tools_changed"


def record_event(
    call: Call, kind: CallEventKind, audience: Audience = Audience.EVERYONE, **data: Any
):
    """Add an event to the caller's transaction; streams hear of it once it commits."""
    event = CallEvent(call=call, kind=kind, audience=audience.value, data=data)
    return _added(event, lambda: call.id)


def record_event_in(
    call_id: int, kind: CallEventKind, audience: Audience = Audience.EVERYONE, **data: Any
):
    """``record_event`` for a call known by its id, which spares loading the call: the
    worker announcing a payment has only the payment's row."""
    event = CallEvent(call_id=call_id, kind=kind, audience=audience.value, data=data)
    return _added(event, lambda: call_id)


def _added(event: CallEvent, call_id_of) -> CallEvent:
    db.session.add(event)
    db.session.flush()
    waker = current_app.extensions.get("call_waker")
    if waker is not None:
        call_id, event_id = call_id_of(), event.id  # a new call has its id once flushed
        after_commit(db.session(), lambda: _announce_when_answered(waker, call_id, event_id))
    return event


def _announce_when_answered(waker: "CallWaker", call_id: int, event_id: int) -> None:
    """In a web request, wake the streams once the answer has gone out: the person who made
    the change is not kept waiting while every screen on the call catches up."""
    if not has_request_context():
        waker.announce(call_id, event_id)
        return
    g.setdefault("call_announcements", []).append((waker, call_id, event_id))


def send_announcements(response: Response) -> Response:
    announcements = g.pop("call_announcements", [])
    if announcements:
        response.call_on_close(
            lambda: [waker.announce(call, event) for waker, call, event in announcements]
        )
    return response


def latest_event_id(call_id: int) -> int:
    return db.session.scalar(select(func.max(CallEvent.id)).filter_by(call_id=call_id)) or 0


STAFF_AUDIENCES = (Audience.EVERYONE.value, Audience.STAFF.value)
PATIENT_AUDIENCES = (Audience.EVERYONE.value,)
