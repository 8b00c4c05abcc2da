"""Money and decisions through the real worker, on the embedded shape and on Redis.

vcpay runs on its own processes (tests/worker_rig.py): gunicorn, one Celery worker and beat,
on SQLite with the file-system broker, and on PostgreSQL with the Redis broker. Nothing is
processed in the test process: the Stripe stand-in's webhooks reach the web server, the
worker applies them, and the clinician's call screen hears of it over HTTP. The same worker
polls the Jira stand-in for decisions, sweeps up work whose message was lost, and asks
Stripe about payments whose webhooks never came.
"""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.stripe_standin import WEBHOOK_SECRET, served
from tests.test_enablement_jira import queued_request
from tests.worker_rig import CLINICIAN, SHAPES, Browser, WorkerRig
from vcpay.database import utcnow
from vcpay.enablement.models import EnablementRequest, JiraPollCursor, RequestState
from vcpay.enablement.polling import CURSOR
from vcpay.enablement.raising import raise_in_service_desk
from vcpay.extensions import db
from vcpay.integrations.servicedesk import ServiceDesk
from vcpay.mail.models import OutboundEmail
from vcpay.payments.models import PaymentRequest, PaymentState
from vcpay.people.models import Clinic, Organisation
from vcpay.webhooks.models import EventState, StripeEvent
from workers import celery_settings

pytestmark = [pytest.mark.worker, pytest.mark.timeout(240)]

PATIENT_EMAIL = "pat@example.org"


@pytest.fixture(scope="module", params=SHAPES)
def rig(request, tmp_path_factory):
    with WorkerRig(request.param, tmp_path_factory.mktemp(request.param)) as running:
        yield running


@pytest.fixture(scope="module")
def clinician(rig):
    return Browser(rig.web_url).sign_in(CLINICIAN)


def paid_request(rig, clinician, amount: str = "85.00", description: str = "Consultation"):
    """A call with a payment request the patient has paid, applied by the worker."""
    call_id = clinician.start_call(rig.gp_id, "Pat Citizen, 10:30")
    key = clinician.request_payment(call_id, amount, description)
    rig.stripe.pay(rig.payment_request(key).checkout_session_id)
    rig.wait(lambda: rig.payment_request(key).state == PaymentState.PAID, "the payment")
    return call_id, key


def stripe_events(event_type: str, about: str) -> list[StripeEvent]:
    """Stored events of a type that name ``about`` (a session's or a payment's id)."""
    db.session.rollback()
    query = select(StripeEvent).filter_by(type=event_type).order_by(StripeEvent.id)
    return [e for e in db.session.scalars(query) if about in e.payload]


def minutes_ago(minutes: int):
    return utcnow() - timedelta(minutes=minutes)


def test_a_payment_reaches_the_clinicians_screen_through_the_worker(rig, clinician):
    call_id = clinician.start_call(rig.gp_id, "Pat Citizen, 10:30")
    with clinician.stream(f"/calls/{call_id}/events?after=0") as screen:
        rig.wait(lambda: screen.find("call_started"), "the call screen's stream to open")
        key = clinician.request_payment(call_id, "85.00", "Consultation")
        request = rig.payment_request(key)
        assert request.state == PaymentState.REQUESTED
        rig.stripe.pay(request.checkout_session_id)  # the patient, on Stripe Checkout
        [popup] = rig.wait(
            lambda: screen.find("payment_paid", request=key), "payment_paid on the screen"
        )
    assert (popup["amount"], popup["description"]) == ("A$85.00", "Consultation")
    request = rig.payment_request(key)
    assert (request.state, request.patient_email) == (PaymentState.PAID, PATIENT_EMAIL)
    [completed] = stripe_events("checkout.session.completed", request.checkout_session_id)
    assert completed.state == EventState.PROCESSED
    assert rig.ran("vcpay.webhooks.process_stripe_events") >= 1  # the worker applied it
    # The worker sends the receipt too, once.
    receipt_number = f"Receipt {request.receipt_number or key[:12]}"
    rig.wait(lambda: rig.mail_to(PATIENT_EMAIL, "Your receipt", receipt_number), "the receipt")
    receipts = db.session.scalar(
        select(func.count())
        .select_from(OutboundEmail)
        .filter_by(dedupe_key=f"receipt:{request.id}")
    )  # fmt: skip
    assert receipts == 1
    assert len(rig.call_events(key, "payment_paid")) == 1


def test_a_refund_in_stripe_reaches_staff_through_the_worker(rig, clinician):
    call_id, key = paid_request(rig, clinician, "100.00", "Physiotherapy")
    with clinician.stream(f"/calls/{call_id}/events?after=0") as screen:
        rig.refund(rig.payment_request(key), 2500)
        rig.wait(
            lambda: screen.find("payment_refunded", request=key, refunded="A$25.00"),
            "the partial refund on the screen",
        )
        request = rig.payment_request(key)
        assert (request.state, request.amount_refunded) == (PaymentState.PARTIALLY_REFUNDED, 2500)
        rig.refund(request)  # the rest
        rig.wait(
            lambda: screen.find("payment_refunded", request=key, refunded="A$100.00"),
            "the full refund on the screen",
        )
    request = rig.payment_request(key)
    assert (request.state, request.amount_refunded) == (PaymentState.REFUNDED, 10000)
    refunds = stripe_events("charge.refunded", request.payment_intent_id)
    assert [e.state for e in refunds] == [EventState.PROCESSED] * 2
    assert [e.audience for e in rig.call_events(key, "payment_refunded")] == ["staff", "staff"]


def test_the_reconciler_pays_a_request_whose_webhook_never_came(rig, clinician):
    call_id = clinician.start_call(rig.gp_id, "Pat Citizen, 11:00")
    key = clinician.request_payment(call_id, "60.00", "Follow-up")
    request = rig.payment_request(key)
    rig.stripe.webhook_fault("hold", count=50)  # Stripe sends nothing, for now
    try:
        rig.stripe.pay(request.checkout_session_id)
        with clinician.stream(f"/calls/{call_id}/events?after=0") as screen:
            rig.wait(lambda: screen.find("call_started"), "the call screen's stream to open")
            # Quiet for three minutes: beat's next reconcile asks Stripe about it.
            db.session.execute(
                update(PaymentRequest).filter_by(id=request.id).values(created_at=minutes_ago(3))
            )
            db.session.commit()
            rig.wait(lambda: screen.find("payment_paid", request=key), "the reconciler")
    finally:
        rig.stripe.call("DELETE", "webhook-faults")
        rig.stripe.release_held("created")
    request = rig.payment_request(key)
    assert request.state == PaymentState.PAID and request.reconciled_at is not None
    # The webhooks arrive at last, and are processed: they change nothing more.
    rig.wait(
        lambda: (
            [e.state for e in stripe_events("checkout.session.completed", key)]
            == [EventState.PROCESSED]
        ),
        "the late completion to be processed",
    )
    assert len(rig.call_events(key, "payment_paid")) == 1


def test_an_event_whose_message_was_lost_is_swept_to_the_worker(rig, clinician):
    call_id = clinician.start_call(rig.gp_id, "Pat Citizen, 11:30")
    key = clinician.request_payment(call_id, "45.00", "Script renewal")
    request = rig.payment_request(key)
    swept_before = rig.swept()
    # A web process that stores each event and then loses its message to the workers.
    with served(rig.app) as forgetful_web:
        rig.stripe.send_webhooks_to(f"{forgetful_web}/webhooks/stripe", WEBHOOK_SECRET)
        try:
            rig.stripe.pay(request.checkout_session_id)
            rig.stripe.wait_for_webhooks(timeout=30)
        finally:
            rig.stripe.send_webhooks_to(f"{rig.web_url}/webhooks/stripe", WEBHOOK_SECRET)
    assert stripe_events("checkout.session.completed", key), "the event was not stored"
    rig.wait(lambda: rig.payment_request(key).state == PaymentState.PAID, "the sweeper")
    assert rig.swept() > swept_before
    [completed] = stripe_events("checkout.session.completed", key)
    assert completed.state == EventState.PROCESSED
    assert len(rig.call_events(key, "payment_paid")) == 1


def organisation(rig) -> Organisation:
    db.session.rollback()
    return db.session.get(Organisation, rig.organisation_id)


def vcpay_comments(rig, request: EnablementRequest) -> list[str]:
    [raised] = [r for r in rig.jira.requests() if r["key"] == request.jira_key]
    return [c["body"] for c in raised["comments"] if request.correlation_id in c["body"]]


def test_a_jira_approval_enables_the_clinic_through_the_workers_poll(rig):
    clinic = rig.new_clinic("Harbourside Dental")
    request = queued_request(organisation(rig), [clinic])
    raise_in_service_desk(request, ServiceDesk.from_config(rig.app.config))
    db.session.commit()
    request_id, key = request.id, request.jira_key
    rig.jira.decide(key, "approve")

    def approved():
        db.session.rollback()
        return db.session.get(EnablementRequest, request_id).state == RequestState.APPROVED

    def commented():
        db.session.rollback()
        return db.session.get(EnablementRequest, request_id).comment_posted_at is not None

    rig.wait(approved, "the poll to apply the approval")
    assert db.session.get(Clinic, clinic.id).gateway_enabled
    rig.wait(commented, "the comment on the Jira request")
    commented_at = utcnow()

    def swept_and_polled_since():
        db.session.rollback()
        cursor = db.session.get(JiraPollCursor, CURSOR)
        times = (cursor.swept_at, cursor.polled_at)
        return all(t is not None and t > commented_at for t in times)

    rig.wait(swept_and_polled_since, "another poll and sweep")  # they change nothing
    request = db.session.get(EnablementRequest, request_id)
    [comment] = vcpay_comments(rig, request)
    assert f"{clinic.name} (vcpay clinic {clinic.id})" in comment
    rig.wait(
        lambda: rig.mail_to("manager@harbourside.example", "Payment Gateway approved"),
        "the manager's email",
    )


def test_a_request_whose_raise_was_lost_is_requeued_by_the_sweep(rig):
    clinic = rig.new_clinic("Harbourside Podiatry")
    # Submitted by the manager: queued, and its message to the workers lost.
    request = queued_request(organisation(rig), [clinic])
    request_id = request.id
    assert request.state == RequestState.QUEUED
    request.endorsed_at = request.updated_at = minutes_ago(30)
    db.session.commit()

    def raised():
        db.session.rollback()
        return db.session.get(EnablementRequest, request_id).state == RequestState.RAISED

    rig.wait(raised, "the sweep to queue the raise again")
    request = db.session.get(EnablementRequest, request_id)
    assert [r["key"] for r in rig.jira.requests() if request.correlation_id in r["summary"]] == [
        request.jira_key
    ]


def test_beat_has_the_worker_run_every_periodic_task(rig):
    """Beat sends each scheduled task by name; the worker runs it. Tasks that come every ten
    minutes or more (resending email, refreshing payouts) are past a test's patience: their
    names are checked in test_beat_schedule."""
    schedule = celery_settings(rig.app.config, str(rig.folder))["beat_schedule"]
    patience = timedelta(minutes=2)
    tasks = {e["task"] for e in schedule.values() if e["schedule"] <= patience}
    assert "vcpay.payments.reconcile_payment_requests" in tasks  # the rig makes them frequent
    rig.wait(lambda: all(rig.ran(task) for task in tasks), "every periodic task to run")
