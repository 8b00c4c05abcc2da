"""The reconciler: what a missed webhook would have told, learnt by asking Stripe.

Each test makes payment requests on the GP clinic's account at the Stripe stand-in with no
webhook endpoint set (or with its webhooks held back), so nothing but the reconciler tells
vcpay what happened there. Time passing is the database's clock moved back (``created_at``,
``reconciled_at``); which sessions the reconciler asked about is read from the stand-in's
own log of calls. The same task through a real worker and beat is in test_worker_pipeline.
"""

import secrets
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.stripe_standin import link_clinic, process_received, wait_for_events
from vcpay.calls.models import CallEvent
from vcpay.calls.services import start_call
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.payments import reconciler, requesting
from vcpay.payments.models import PaymentRequest, PaymentState
from vcpay.payments.tasks import reconcile_payment_requests, reconcile_thresholds
from vcpay.people.demo import seed_demo
from vcpay.people.services import find_user_by_email

CLINICIAN = "clinician@harbourside.example"


@pytest.fixture
def call(app, stripe_control):
    organisation = seed_demo(enable_gateway=True)
    clinic = next(c for c in organisation.clinics if c.name == "Harbourside GP Clinic")
    link_clinic(stripe_control, clinic)
    db.session.commit()
    call = start_call(clinic, find_user_by_email(CLINICIAN), "Pat Citizen, 10:30")
    db.session.commit()
    return call


def requested(call, count: int = 1) -> list[PaymentRequest]:
    """``count`` payment requests in the call, each with its Checkout Session at Stripe."""
    stripe_api = StripeApi.for_app()
    clinician = find_user_by_email(CLINICIAN)
    made = []
    for number in range(count):
        key = secrets.token_urlsafe(18)  # as the Request Payment form makes them
        # Each its own description: the same one still open would ask the clinician first.
        description = f"Consultation {number} ({key[:6]})"
        asked = requesting.PaymentAsked(f"{40 + number}.00", description, key, requesting.ANYONE)
        outcome = requesting.request_payment(call, clinician, asked, stripe_api)
        db.session.commit()
        made.append(outcome.request)
    return made


def minutes_ago(minutes: float):
    return utcnow() - timedelta(minutes=minutes)


def age(requests: list[PaymentRequest], **columns) -> None:
    """Move the requests' own clock back, as if that much time had passed."""
    ids = [r.id for r in requests]
    db.session.execute(update(PaymentRequest).where(PaymentRequest.id.in_(ids)).values(**columns))
    db.session.commit()


def fresh(request: PaymentRequest) -> PaymentRequest:
    db.session.rollback()
    return db.session.get(PaymentRequest, request.id)


def sessions_asked(stripe_control) -> list[str]:
    """The Checkout Sessions read at Stripe since the log was last cleared, in order."""
    return [
        call["path"].rsplit("/", 1)[1]
        for call in stripe_control.call("GET", "calls")
        if call["method"] == "GET" and call["path"].startswith("/v1/checkout/sessions/")
    ]


def kinds(request: PaymentRequest) -> list[str]:
    query = select(CallEvent).filter_by(call_id=request.call_id).order_by(CallEvent.id)
    return [
        e.kind for e in db.session.scalars(query) if e.data.get("request") == request.request_key
    ]


def test_a_session_that_expired_at_stripe_unseen_is_expired(app, call, stripe_control):
    [request] = requested(call)
    stripe_control.expire_now(request.checkout_session_id)  # its webhook goes nowhere
    age([request], created_at=minutes_ago(3))
    assert reconcile_payment_requests.run() == 1  # the task beat runs, in this process
    request = fresh(request)
    assert request.state == PaymentState.EXPIRED
    assert kinds(request) == ["payment_requested", "payment_expired"]
    assert request.reconciled_at is not None


def test_a_payment_whose_webhook_never_came_is_paid_once(app, call, stripe_control):
    [request] = requested(call)
    stripe_control.pay(request.checkout_session_id)
    age([request], created_at=minutes_ago(3))
    assert reconcile_payment_requests.run() == 1
    request = fresh(request)
    assert (request.state, request.patient_email) == (PaymentState.PAID, "pat@example.org")
    age([request], reconciled_at=minutes_ago(10), expires_at=minutes_ago(1))
    assert reconcile_payment_requests.run() == 0  # settled: never asked about again
    assert kinds(fresh(request)) == ["payment_requested", "payment_paid"]


def test_stripe_failing_for_one_request_leaves_the_others_reconciled(app, call, stripe_control):
    first, failing, third = requested(call, 3)
    for request in (first, failing, third):
        stripe_control.pay(request.checkout_session_id)
    stripe_control.fault(
        path_prefix=f"/v1/checkout/sessions/{failing.checkout_session_id}",
        method="GET", status=500, count=None,
    )  # fmt: skip
    age([first, failing, third], created_at=minutes_ago(3))
    assert reconcile_payment_requests.run() == 2
    states = [fresh(r).state for r in (first, failing, third)]
    assert states == [PaymentState.PAID, PaymentState.REQUESTED, PaymentState.PAID]
    assert fresh(failing).reconciled_at is not None  # asked, so it waits its turn again
    stripe_control.clear_faults()
    age([failing], reconciled_at=minutes_ago(6))
    assert reconcile_payment_requests.run() == 1  # asked again, this time answered
    assert fresh(failing).state == PaymentState.PAID


def test_requests_stripe_keeps_refusing_do_not_starve_the_others(app, call, stripe_control):
    """A run looks at a limited number of requests; those Stripe refuses every time (an
    account disconnected while its webhooks were missed, say) must not take every place."""
    refused = requested(call, 2)
    [paid] = requested(call)
    stripe_control.pay(paid.checkout_session_id)
    for request in refused:
        stripe_control.fault(
            path_prefix=f"/v1/checkout/sessions/{request.checkout_session_id}",
            method="GET", status=500, count=None,
        )  # fmt: skip
    # Made a few minutes earlier, so they expire first.
    age(refused, created_at=minutes_ago(8), expires_at=minutes_ago(-22))
    age([paid], created_at=minutes_ago(3))
    stripe_api = StripeApi.for_app()
    for _ in range(3):
        reconciler.reconcile(stripe_api, **reconcile_thresholds(app.config), limit=2)
    assert fresh(paid).state == PaymentState.PAID
    assert [fresh(r).state for r in refused] == [PaymentState.REQUESTED] * 2


def test_the_reconciler_waits_for_a_quiet_spell_and_asks_again_only_now_and_then(
    app, call, stripe_control
):
    [request] = requested(call)
    session = request.checkout_session_id
    stripe_control.call("DELETE", "calls")
    age([request], created_at=minutes_ago(1))
    assert reconcile_payment_requests.run() == 0
    assert sessions_asked(stripe_control) == []  # too recent: its webhook may yet come
    age([request], created_at=minutes_ago(3))
    assert reconcile_payment_requests.run() == 0  # asked; still open at Stripe
    assert sessions_asked(stripe_control) == [session]
    asked_at = fresh(request).reconciled_at
    assert asked_at is not None
    assert reconcile_payment_requests.run() == 0
    assert sessions_asked(stripe_control) == [session]  # asked moments ago: not again yet
    age([request], reconciled_at=minutes_ago(4))
    reconcile_payment_requests.run()
    assert sessions_asked(stripe_control) == [session]
    age([request], reconciled_at=minutes_ago(6))
    reconcile_payment_requests.run()
    assert sessions_asked(stripe_control) == [session, session]  # the re-check interval
    age([request], reconciled_at=minutes_ago(1), expires_at=minutes_ago(1))
    reconcile_payment_requests.run()
    assert sessions_asked(stripe_control) == [session] * 3  # past its expiry: asked each run


class WebhookLandsMeanwhile(StripeApi):
    """Stripe answers the reconciler; before the reconciler acts on the answer, a worker
    applies the same payment's webhook in a transaction of its own."""

    def __init__(self, app, meanwhile):
        super().__init__(StripeApi.for_app().settings)
        self.app, self.meanwhile = app, meanwhile

    def retrieve_checkout_session(self, account_id: str, session_id: str):
        answer = super().retrieve_checkout_session(account_id, session_id)
        worker = threading.Thread(target=self._as_a_worker)
        worker.start()
        worker.join(timeout=60)
        assert not worker.is_alive(), "the webhook was not applied"
        return answer

    def _as_a_worker(self) -> None:
        with self.app.app_context():
            self.meanwhile()


def test_a_webhook_applied_while_the_reconciler_asks_stripe_is_announced_once(app, call, webhooks):
    [request] = requested(call)
    webhooks.webhook_fault("hold", count=50)  # the completion waits at Stripe for now
    webhooks.pay(request.checkout_session_id)
    age([request], created_at=minutes_ago(3))

    def webhook_arrives_and_is_processed():
        webhooks.call("DELETE", "webhook-faults")
        webhooks.release_held("created")
        wait_for_events("checkout.session.completed")
        process_received()

    stripe_api = WebhookLandsMeanwhile(app, webhook_arrives_and_is_processed)
    assert (
        reconciler.reconcile(stripe_api, **reconcile_thresholds(app.config)) == 0
    )  # the webhook got there first
    request = fresh(request)
    assert request.state == PaymentState.PAID
    assert kinds(request) == ["payment_requested", "payment_paid"]  # one popup, not two
