"""What becomes of a payment request: declines, cancelling, expiry, delayed methods, refunds,
the reconciler, and a removed Stripe link.

The real ``stripe`` library talks HTTP to the stand-in, whose webhooks reach vcpay over HTTP;
stored events are processed as a worker would.
"""

import json
import re
from datetime import timedelta

from sqlalchemy import select, update

from tests.conftest import csrf_token
from tests.payment_steps import (
    ask,
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    join,
    kinds,
    paid_in_a_new_call,
    pay_and_process,
    pay_link,
    pay_now,
    requests_made,
    start_call,
    stripe_platform,
    the_request,
)
from tests.stripe_standin import process_received, received, wait_for_events
from vcpay.client_payments.models import StripeLink
from vcpay.client_payments.stripe_link import remove_link
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.payments import reconciler
from vcpay.payments.models import PaymentRequest, PaymentState
from vcpay.payments.tasks import reconcile_thresholds
from vcpay.people.models import User
from vcpay.webhooks.models import EventState


def test_a_declined_card_leaves_the_request_open_and_both_sides_see_it(
    app, clinician, gp, webhooks
):
    call = start_call(clinician, gp)
    patient = join(app, call)
    ask(clinician, call)
    request = the_request()
    outcome = pay_and_process(webhooks, request, "4000000000000002")
    assert outcome["outcome"] != "succeeded"
    wait_for_events("payment_intent.payment_failed")
    process_received()
    request = the_request()
    assert request.state == PaymentState.REQUESTED
    assert "declined" in request.last_decline
    assert "Card declined, patient can retry" in clinician.get(f"/calls/{call.id}/panel").get_data(
        as_text=True
    )
    patient_panel = patient.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    assert "Your card was not accepted" in patient_panel and "Pay now" in patient_panel
    pay_and_process(webhooks, request)  # another card
    wait_for_events("checkout.session.completed")
    process_received()
    assert the_request().state == PaymentState.PAID


def test_a_late_decline_after_the_payment_changes_nothing(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    ask(clinician, call)
    request = the_request()
    webhooks.webhook_fault("hold", count=20)
    pay_and_process(webhooks, request, "4000000000009995")
    pay_and_process(webhooks, request)
    webhooks.release_held("reverse")  # completion first, the older decline last
    wait_for_events("payment_intent.payment_failed")
    wait_for_events("checkout.session.completed")
    process_received()
    request = the_request()
    assert (request.state, request.last_decline) == (PaymentState.PAID, "")


def test_the_clinician_cancels_a_pending_request(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    patient = join(app, call)
    ask(clinician, call)
    request = the_request()
    token = csrf_token(clinician, f"/calls/{call.id}")
    clinician.post(
        f"/calls/{call.id}/payment-requests/{request.request_key}/cancel",
        data={"csrf_token": token},
    )
    assert the_request().state == PaymentState.CANCELLED
    [session] = webhooks.sessions()
    assert session["status"] == "expired"  # nobody can pay it any more
    assert "Cancelled by the clinic" in patient.get(f"/join/{call.guest_token}/panel").get_data(
        as_text=True
    )
    wait_for_events("checkout.session.expired")
    process_received()
    assert the_request().state == PaymentState.CANCELLED  # not "expired"
    assert patient.get(pay_link(call, request)).status_code == 200
    assert pay_now(patient, call, request).status_code == 200  # nothing to pay: no Checkout


def test_cancelling_what_the_patient_just_paid_leaves_it_paid(app, clinician, gp, stripe_control):
    call = start_call(clinician, gp)
    ask(clinician, call)
    request = the_request()
    pay_and_process(stripe_control, request)  # its webhook has not arrived yet
    token = csrf_token(clinician, f"/calls/{call.id}")
    response = clinician.post(
        f"/calls/{call.id}/payment-requests/{request.request_key}/cancel",
        data={"csrf_token": token},
    )
    assert "the patient has already paid" in clinician.get(response.location).get_data(as_text=True)
    assert the_request().state == PaymentState.PAID


def test_cancelling_from_a_stale_screen_says_what_became_of_the_request(
    app, clinician, gp, webhooks
):
    call = start_call(clinician, gp)
    ask(clinician, call)
    request = the_request()
    webhooks.expire_now(request.checkout_session_id)
    wait_for_events("checkout.session.expired")
    process_received()
    token = csrf_token(clinician, f"/calls/{call.id}")
    response = clinician.post(
        f"/calls/{call.id}/payment-requests/{request.request_key}/cancel",
        data={"csrf_token": token},
    )
    page = clinician.get(response.location).get_data(as_text=True)
    notices = re.findall(r'<div class="notice [^"]*"[^>]*>([^<]*)</div>', page)
    assert notices == ["Nothing to cancel: the request is no longer open."]
    assert the_request().state == PaymentState.EXPIRED


def test_an_unpaid_request_expires(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    patient = join(app, call)
    ask(clinician, call)
    webhooks.expire_now(the_request().checkout_session_id)
    wait_for_events("checkout.session.expired")
    process_received()
    assert the_request().state == PaymentState.EXPIRED
    assert "Expired" in patient.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    assert "Expired, not paid" in clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)


def test_a_delayed_payment_method_settles_later_or_fails(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    for outcome, final in (("succeeded", PaymentState.PAID), ("failed", PaymentState.FAILED)):
        ask(clinician, call)
        request = requests_made()[-1]
        webhooks.pay(request.checkout_session_id, delayed=True)
        webhooks.wait_for_webhooks()
        process_received()
        assert requests_made()[-1].state == PaymentState.PROCESSING
        webhooks.settle(request.checkout_session_id, outcome)
        webhooks.wait_for_webhooks()
        process_received()
        assert requests_made()[-1].state == final


def test_refunds_from_stripe_are_recorded(app, clinician, gp, webhooks):
    request = paid_in_a_new_call(clinician, gp, webhooks)
    platform = stripe_platform(app, webhooks)
    options = {"stripe_account": request.stripe_account_id}
    platform.v1.refunds.create(
        {"payment_intent": the_request().payment_intent_id, "amount": 2500}, options
    )
    webhooks.wait_for_webhooks()
    process_received()
    assert (the_request().state, the_request().amount_refunded) == (
        PaymentState.PARTIALLY_REFUNDED,
        2500,
    )
    platform.v1.refunds.create({"payment_intent": the_request().payment_intent_id}, options)
    webhooks.wait_for_webhooks()
    process_received()
    assert (the_request().state, the_request().amount_refunded) == (PaymentState.REFUNDED, 10000)


def test_refund_events_arriving_out_of_order_leave_the_latest_refund(app, clinician, gp, webhooks):
    request = paid_in_a_new_call(clinician, gp, webhooks)
    platform = stripe_platform(app, webhooks)
    options = {"stripe_account": request.stripe_account_id}
    intent = the_request().payment_intent_id
    webhooks.webhook_fault("hold", count=20)
    platform.v1.refunds.create({"payment_intent": intent, "amount": 2500}, options)
    platform.v1.refunds.create({"payment_intent": intent, "amount": 5000}, options)
    webhooks.release_held("reverse")  # the second refund's event first, the first's last
    arrived = wait_for_events("charge.refunded", 2)
    refunded_so_far = [json.loads(e.payload)["data"]["object"]["amount_refunded"] for e in arrived]
    assert refunded_so_far == [7500, 2500]
    process_received()
    assert (the_request().state, the_request().amount_refunded) == (
        PaymentState.PARTIALLY_REFUNDED,
        7500,
    )
    assert kinds(request.call).count("payment_refunded") == 1  # the older event changed nothing
    assert [e.state for e in received("charge.refunded")] == [EventState.PROCESSED] * 2


def test_the_reconciler_finds_a_payment_whose_webhook_never_came(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    ask(clinician, call)
    request = the_request()
    pay_and_process(stripe_control, request)
    stripe_api = StripeApi.from_config(app.config)
    thresholds = reconcile_thresholds(app.config)
    assert reconciler.reconcile(stripe_api, **thresholds) == 0  # too recent to ask about yet
    db.session.execute(update(PaymentRequest).values(created_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()
    assert reconciler.reconcile(stripe_api, **thresholds) == 1
    assert the_request().state == PaymentState.PAID
    assert reconciler.reconcile(stripe_api, **thresholds) == 0


def test_removing_the_stripe_link_cancels_open_requests(app, clinician, gp, stripe_control):
    call = start_call(clinician, gp)
    ask(clinician, call)
    link = db.session.scalar(select(StripeLink))
    admin = db.session.scalar(select(User).filter_by(email="clinicadmin@harbourside.example"))
    remove_link(link, admin, StripeApi.from_config(app.config))
    db.session.commit()
    assert the_request().state == PaymentState.CANCELLED
    assert stripe_control.sessions()[0]["status"] == "expired"


def test_the_reconciler_finds_a_delayed_payment_that_failed(app, clinician, gp, stripe_control):
    call = start_call(clinician, gp)
    ask(clinician, call)
    request = the_request()
    stripe_control.pay(request.checkout_session_id, delayed=True)  # no webhook endpoint
    stripe_control.settle(request.checkout_session_id, "failed")
    db.session.execute(update(PaymentRequest).values(created_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()
    assert (
        reconciler.reconcile(StripeApi.from_config(app.config), **reconcile_thresholds(app.config))
        == 1
    )
    assert the_request().state == PaymentState.FAILED


def test_a_payment_made_just_before_the_link_is_removed_stays_paid(
    app, clinician, gp, stripe_control
):
    """The patient pays; before word of it arrives, the admin removes the link. Stripe's word
    after the disconnection is ignored, so the removal itself records the payment."""
    call = start_call(clinician, gp)
    ask(clinician, call)
    stripe_control.pay(the_request().checkout_session_id)  # no webhook endpoint
    link = db.session.scalar(select(StripeLink))
    admin = db.session.scalar(select(User).filter_by(email="clinicadmin@harbourside.example"))
    remove_link(link, admin, StripeApi.from_config(app.config))
    db.session.commit()
    paid = the_request()
    assert paid.state == PaymentState.PAID
    assert paid.paid_at is not None and paid.card_last4 == "4242"
