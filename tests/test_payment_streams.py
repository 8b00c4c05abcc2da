"""A call's event stream as the payment screens follow it: resuming, audiences, closing.

The real ``stripe`` library talks HTTP to the stand-in, whose webhooks reach vcpay over HTTP;
stored events are processed as a worker would.
"""

from datetime import timedelta

from sqlalchemy import delete, select, update

from tests.conftest import csrf_token
from tests.payment_steps import (
    CLINICIAN,
    ask,
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    join,
    pay_and_process,
    read_stream,
    start_call,
    stripe_platform,
    the_request,
)
from tests.stripe_standin import process_received
from vcpay.calls import stream as call_stream
from vcpay.calls.models import Call
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.people.models import ClinicMembership, User


def test_the_event_stream_resumes_after_the_last_event_id_and_keeps_staff_events_from_the_patient(
    app, clinician, gp, webhooks
):
    app.config["STREAM_MAX_SECONDS"] = 1
    call = start_call(clinician, gp)
    patient = join(app, call)
    ask(clinician, call, "100.00")
    request = the_request()
    pay_and_process(webhooks, request)
    webhooks.wait_for_webhooks()
    process_received()
    platform = stripe_platform(app, webhooks)
    platform.v1.refunds.create(
        {"payment_intent": the_request().payment_intent_id},
        {"stripe_account": request.stripe_account_id},
    )
    webhooks.wait_for_webhooks()
    process_received()

    staff = read_stream(clinician, f"/calls/{call.id}/events?after=0")
    assert [e["kind"] for e in staff] == [
        "call_started",
        "participant_joined",
        "payment_requested",
        "payment_paid",
        "payment_refunded",
    ]
    assert staff[3]["amount"] == "A$100.00" and staff[3]["patient"] == "Pat Citizen"
    resumed = read_stream(
        clinician, f"/calls/{call.id}/events?after=0", **{"Last-Event-ID": str(staff[2]["id"])}
    )
    assert [e["kind"] for e in resumed] == ["payment_paid", "payment_refunded"]
    seen_by_patient = read_stream(patient, f"/join/{call.guest_token}/events")
    assert "payment_refunded" not in [e["kind"] for e in seen_by_patient]
    assert "payment_paid" in [e["kind"] for e in seen_by_patient]
    assert (
        clinician.get(f"/calls/{call.id}/events", headers={"Last-Event-ID": "x"}).status_code == 400
    )


def test_streams_close_when_their_viewers_lose_access_to_the_call(app, clinician, gp, monkeypatch):
    monkeypatch.setattr(call_stream, "RECHECK_SECONDS", 0.2)
    monkeypatch.setattr(call_stream, "KEEPALIVE_SECONDS", 0.2)
    app.config.update(STREAM_POLL_SECONDS=0.05, STREAM_MAX_SECONDS=30)
    call = start_call(clinician, gp)
    patient = join(app, call)
    staff = iter(clinician.get(f"/calls/{call.id}/events").response)
    guest = iter(patient.get(f"/join/{call.guest_token}/events").response)
    assert next(staff).startswith(b"retry:") and next(guest).startswith(b"retry:")
    # The call ends, and its link's grace runs out; the clinician leaves the clinic.
    clinician.post(f"/calls/{call.id}/end", data={"csrf_token": csrf_token(clinician, "/calls/")})
    doctor = db.session.scalar(select(User).filter_by(email=CLINICIAN))
    db.session.execute(delete(ClinicMembership).filter_by(user_id=doctor.id))
    grace = timedelta(minutes=app.config["GUEST_LINK_GRACE_MINUTES"] + 1)
    db.session.execute(update(Call).filter_by(id=call.id).values(ended_at=utcnow() - grace))
    db.session.commit()
    for stream in (staff, guest):
        assert b"".join(stream).decode().endswith("event: closed\ndata: {}\n\n")
