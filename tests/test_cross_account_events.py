"""A Stripe event changes a payment only for the account it came from, and only through
what Stripe says when asked again.

Clinic B of another organisation has its own linked Stripe account. The patient's URLs carry
clinic A's payment key, so B can put it in the metadata of B's own charges; Stripe then signs
B's events as genuinely as A's. Every payment handler is attacked here: with real events the
stand-in sends for B's account, with events from A's own account about objects that are not
the request's, and with bodies that contradict what Stripe says.
"""

import pytest
import stripe
from sqlalchemy import select

from tests import factories
from tests.payment_steps import (  # noqa: F401 - the fixtures
    ask,
    clinician_fixture,
    gp_fixture,
    join,
    start_call,
    the_request,
)
from tests.stripe_events import event, post_event
from tests.stripe_standin import link_clinic, process_received, received
from vcpay.calls.models import CallEvent
from vcpay.client_payments.models import StripeLink
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail
from vcpay.payments.models import PaymentRefund, PaymentState, RefundState
from vcpay.webhooks.models import EventState, StripeEvent


@pytest.fixture
def clinic_b(app, stripe_control):
    """Another organisation's clinic, with a Stripe account of its own linked."""
    organisation = factories.organisation("Bayside Care", "Bayside Clinic")
    clinic = organisation.clinics[0]
    clinic.gateway_enabled_at = utcnow()
    link = link_clinic(stripe_control, clinic)
    db.session.commit()
    return link.account_id


@pytest.fixture
def platform(app, stripe_control):
    """The Stripe API as a clinic (or anyone with access to an account) can call it."""
    return stripe.StripeClient(
        app.config["STRIPE_SECRET_KEY"],
        base_addresses={"api": stripe_control.base, "connect": stripe_control.base},
    )


@pytest.fixture
def requested(app, clinician, gp):
    """Clinic A's request of A$85.00 in a call the patient has joined."""
    call = start_call(clinician, gp)
    join(app, call)
    ask(clinician, call, "85.00", "Consultation")
    return the_request()


def paid(control, request):
    control.pay(request.checkout_session_id)
    control.wait_for_webhooks()
    process_received()
    request = the_request()
    assert request.state == PaymentState.PAID
    return request


def session_on(platform, account: str, request_key: str, amount: int = 500) -> str:
    """A Checkout Session on ``account`` whose metadata names another clinic's request."""
    metadata = {"payment_request": request_key}
    session = platform.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "aud",
                        "unit_amount": amount,
                        "product_data": {"name": "Anything"},
                    },
                }
            ],
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": "http://127.0.0.1/done",
            "cancel_url": "http://127.0.0.1/left",
        },
        {"stripe_account": account},
    )
    return session.id


def ignored(event_type: str) -> list[StripeEvent]:
    return [e for e in received(event_type) if e.state == EventState.IGNORED]


def call_event_kinds(request) -> list[str]:
    db.session.rollback()
    rows = db.session.scalars(select(CallEvent).filter_by(call_id=request.call_id))
    return [row.kind for row in rows]


def refund_of_another_payment(webhooks, platform, request):
    """Another payment on the request's own account, whose metadata names the request, paid
    and then refunded at Stripe: its payment intent and the refund."""
    other = session_on(platform, request.stripe_account_id, request.request_key, amount=8500)
    webhooks.pay(other)
    webhooks.wait_for_webhooks()
    options = {"stripe_account": request.stripe_account_id}
    other_intent = platform.v1.checkout.sessions.retrieve(other, options=options).payment_intent
    refund = platform.v1.refunds.create({"payment_intent": other_intent}, options)
    webhooks.wait_for_webhooks()
    return other_intent, refund


def test_a_refund_on_another_account_naming_the_payment_leaves_it_paid(
    webhooks, platform, requested, clinic_b
):
    request = paid(webhooks, requested)
    session_id = session_on(platform, clinic_b, request.request_key)
    webhooks.pay(session_id)
    webhooks.wait_for_webhooks()
    [charge] = platform.v1.charges.list(options={"stripe_account": clinic_b}).data
    platform.v1.refunds.create({"charge": charge.id}, {"stripe_account": clinic_b})
    webhooks.wait_for_webhooks()
    process_received()
    request = the_request()
    assert (request.state, request.amount_refunded) == (PaymentState.PAID, 0)
    [refund_event] = received("charge.refunded")
    assert refund_event.account == clinic_b
    assert refund_event.state == EventState.IGNORED
    assert "payment_refunded" not in call_event_kinds(request)


def test_a_signed_refund_from_another_account_naming_the_payment_leaves_it_paid(
    client, webhooks, requested, clinic_b
):
    """Clinic B's charge with clinic A's key in its metadata, and the payment intent that
    paid A's request: the account it came from decides."""
    request = paid(webhooks, requested)
    charge = {
        "id": "ch_3Forged00000000000000000",
        "object": "charge",
        "payment_intent": request.payment_intent_id,
        "metadata": {"payment_request": request.request_key},
        "amount_refunded": request.amount,
        "refunded": True,
    }
    assert post_event(client, event("charge.refunded", charge, account=clinic_b)).status_code == 200
    process_received()
    request = the_request()
    assert (request.state, request.amount_refunded) == (PaymentState.PAID, 0)
    [stored] = received("charge.refunded")
    assert stored.state == EventState.IGNORED
    assert "not by the account" in stored.last_error
    assert "payment_refunded" not in call_event_kinds(request)


def test_a_decline_on_another_account_naming_the_request_is_not_shown_to_its_patient(
    webhooks, platform, requested, clinic_b
):
    session_id = session_on(platform, clinic_b, requested.request_key)
    webhooks.pay(session_id, "4000000000000002")
    webhooks.wait_for_webhooks()
    process_received()
    request = the_request()
    assert (request.state, request.last_decline) == (PaymentState.REQUESTED, "")
    assert [e.account for e in ignored("payment_intent.payment_failed")] == [clinic_b]
    assert "payment_declined" not in call_event_kinds(request)


def test_a_signed_decline_from_another_account_cannot_put_its_words_on_the_patients_screen(
    client, stripe_control, requested, clinic_b
):
    intent = {
        "id": "pi_3Forged00000000000000000",
        "object": "payment_intent",
        "metadata": {"payment_request": requested.request_key},
        "last_payment_error": {"message": "Call +61 400 000 000 to pay by phone instead"},
        "status": "requires_payment_method",
    }
    body = event("payment_intent.payment_failed", intent, account=clinic_b)
    assert post_event(client, body).status_code == 200
    process_received()
    request = the_request()
    assert request.last_decline == ""
    assert "payment_declined" not in call_event_kinds(request)
    [stored] = received("payment_intent.payment_failed")
    assert stored.state == EventState.IGNORED


def test_a_decline_on_the_same_account_of_another_payment_is_not_this_requests(
    webhooks, platform, requested
):
    """The clinic's own account, but another PaymentIntent (a payment taken elsewhere)."""
    other = session_on(platform, requested.stripe_account_id, requested.request_key)
    webhooks.pay(other, "4000000000000002")
    webhooks.wait_for_webhooks()
    process_received()
    assert the_request().last_decline == ""
    [failed] = received("payment_intent.payment_failed")
    assert failed.state == EventState.IGNORED
    assert "Not the PaymentIntent" in failed.last_error


def test_the_decline_message_is_stripes_not_the_events(client, stripe_control, requested):
    """A real decline on the request's own session: the reason shown is the one Stripe
    gives when asked, whatever the event's body says."""
    stripe_control.pay(requested.checkout_session_id, "4000000000000002")
    [session] = [s for s in stripe_control.sessions() if s["id"] == requested.checkout_session_id]
    intent = {
        "id": session["payment_intent"],
        "object": "payment_intent",
        "metadata": {"payment_request": requested.request_key},
        "last_payment_error": {"message": "Call +61 400 000 000 to pay by phone instead"},
    }
    body = event("payment_intent.payment_failed", intent, account=requested.stripe_account_id)
    post_event(client, body)
    process_received()
    request = the_request()
    assert request.state == PaymentState.REQUESTED
    assert "declined" in request.last_decline
    assert "+61" not in request.last_decline


def test_a_refund_of_another_charge_on_the_same_account_is_not_this_payments(
    client, webhooks, platform, requested
):
    """The clinic's own account refunds another payment, whose charge names this request."""
    request = paid(webhooks, requested)
    other_intent, refund = refund_of_another_payment(webhooks, platform, request)
    claim = {
        "id": refund.charge,
        "object": "charge",
        "payment_intent": other_intent,
        "metadata": {"payment_request": request.request_key},
        "amount_refunded": 8500,
        "refunded": True,
    }
    post_event(client, event("charge.refunded", claim, account=request.stripe_account_id))
    process_received()
    assert (the_request().state, the_request().amount_refunded) == (PaymentState.PAID, 0)
    refunds = received("charge.refunded")
    assert {e.state for e in refunds} == {EventState.IGNORED}
    assert any("Not the charge" in e.last_error for e in refunds)


def test_the_refunded_amount_is_stripes_not_the_events(client, webhooks, platform, requested):
    request = paid(webhooks, requested)
    options = {"stripe_account": request.stripe_account_id}
    partial = {"payment_intent": request.payment_intent_id, "amount": 1000}
    platform.v1.refunds.create(partial, options)
    webhooks.wait_for_webhooks()
    [charge_id] = [c.id for c in platform.v1.charges.list(options=options).data if c.paid]
    claim = {
        "id": charge_id,
        "object": "charge",
        "payment_intent": request.payment_intent_id,
        "metadata": {"payment_request": request.request_key},
        "amount_refunded": 8500,
        "refunded": True,
    }
    post_event(client, event("charge.refunded", claim, account=request.stripe_account_id))
    process_received()
    request = the_request()
    assert (request.state, request.amount_refunded) == (PaymentState.PARTIALLY_REFUNDED, 1000)


@pytest.mark.parametrize(
    "event_type",
    [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    ],
)
def test_a_session_event_from_another_account_changes_nothing(
    client, stripe_control, requested, clinic_b, event_type
):
    session = {
        "id": requested.checkout_session_id,
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "metadata": {"payment_request": requested.request_key},
    }
    post_event(client, event(event_type, session, account=clinic_b))
    process_received()
    assert the_request().state == PaymentState.REQUESTED
    [stored] = received(event_type)
    assert stored.state == EventState.IGNORED


@pytest.mark.parametrize(
    ("event_type", "claimed"),
    [
        ("checkout.session.completed", {"status": "complete", "payment_status": "paid"}),
        ("checkout.session.async_payment_succeeded", {"status": "complete"}),
        ("checkout.session.async_payment_failed", {"status": "complete"}),
        ("checkout.session.expired", {"status": "expired"}),
    ],
)
def test_a_session_event_from_the_right_account_is_checked_with_stripe(
    client, stripe_control, requested, event_type, claimed
):
    """The body says paid, failed or expired; Stripe says the session is still open."""
    session = {"id": requested.checkout_session_id, "object": "checkout.session", **claimed}
    post_event(client, event(event_type, session, account=requested.stripe_account_id))
    process_received()
    assert the_request().state == PaymentState.REQUESTED
    [stored] = received(event_type)
    assert stored.state == EventState.PROCESSED
    assert db.session.scalars(select(OutboundEmail)).all() == []


def test_an_event_from_the_platform_itself_changes_no_payment(client, stripe_control, requested):
    session = {"id": requested.checkout_session_id, "object": "checkout.session"}
    post_event(client, event("checkout.session.expired", session, account=None))
    process_received()
    assert the_request().state == PaymentState.REQUESTED
    assert received("checkout.session.expired")[0].state == EventState.IGNORED


def test_account_events_from_another_account_touch_only_that_accounts_links(
    client, stripe_control, requested, clinic_b
):
    """An account event is about the account that sent it: naming clinic A's account in the
    body changes nothing of A's."""
    a_account = requested.stripe_account_id
    before = db.session.scalar(select(StripeLink).filter_by(account_id=a_account))
    refreshed_at = before.refreshed_at
    claim = {"id": a_account, "object": "account", "charges_enabled": False}
    post_event(client, event("account.updated", claim, account=clinic_b))
    post_event(client, event("account.application.deauthorized", claim, account=clinic_b))
    process_received()
    db.session.rollback()
    link = db.session.scalar(select(StripeLink).filter_by(account_id=a_account))
    assert link.is_live and link.charges_enabled
    assert link.refreshed_at == refreshed_at
    assert the_request().state == PaymentState.REQUESTED


# Refund events (refund.created, refund.updated, refund.failed, charge.refund.updated): the
# refund is read again on the request's account and must give back the request's own charge.


def refund_rows() -> list[PaymentRefund]:
    db.session.rollback()
    return list(db.session.scalars(select(PaymentRefund)))


def test_a_refund_on_another_account_naming_the_payment_records_no_refund(
    webhooks, platform, requested, clinic_b
):
    request = paid(webhooks, requested)
    session_id = session_on(platform, clinic_b, request.request_key)
    webhooks.pay(session_id)
    webhooks.wait_for_webhooks()
    [charge] = platform.v1.charges.list(options={"stripe_account": clinic_b}).data
    metadata = {"payment_request": request.request_key, "refund_key": "k" * 24}
    platform.v1.refunds.create(
        {"charge": charge.id, "metadata": metadata}, {"stripe_account": clinic_b}
    )
    webhooks.wait_for_webhooks()
    process_received()
    assert refund_rows() == []
    assert (the_request().state, the_request().amount_refunded) == (PaymentState.PAID, 0)
    [created] = received("refund.created")
    assert (created.account, created.state) == (clinic_b, EventState.IGNORED)


@pytest.mark.parametrize(
    "event_type", ["refund.created", "refund.updated", "refund.failed", "charge.refund.updated"]
)
def test_a_signed_refund_event_from_another_account_naming_the_payment_changes_nothing(
    client, webhooks, requested, clinic_b, event_type
):
    request = paid(webhooks, requested)
    refund = {
        "id": "re_3Forged00000000000000000",
        "object": "refund",
        "amount": request.amount,
        "status": "succeeded",
        "payment_intent": request.payment_intent_id,
        "metadata": {"payment_request": request.request_key},
    }
    assert post_event(client, event(event_type, refund, account=clinic_b)).status_code == 200
    process_received()
    assert refund_rows() == []
    assert (the_request().state, the_request().amount_refunded) == (PaymentState.PAID, 0)
    [stored] = received(event_type)
    assert stored.state == EventState.IGNORED
    assert "not by the account" in stored.last_error
    assert "payment_refunded" not in call_event_kinds(request)


def test_a_refund_of_another_payment_on_the_same_account_is_not_recorded_for_this_one(
    client, webhooks, platform, requested
):
    """The clinic's own account, a real refund of another payment; the event claims it gives
    back this request's payment intent. Stripe's answer says otherwise."""
    request = paid(webhooks, requested)
    _other_intent, real = refund_of_another_payment(webhooks, platform, request)
    claim = {
        "id": real.id,
        "object": "refund",
        "amount": 8500,
        "status": "succeeded",
        "payment_intent": request.payment_intent_id,
        "metadata": {"payment_request": request.request_key},
    }
    post_event(client, event("refund.updated", claim, account=request.stripe_account_id))
    process_received()
    assert refund_rows() == []
    assert (the_request().state, the_request().amount_refunded) == (PaymentState.PAID, 0)
    [forged] = [e for e in received("refund.updated") if e.state == EventState.IGNORED]
    assert "is not of payment request" in forged.last_error


def test_a_refund_event_claiming_failure_is_checked_with_stripe(
    client, webhooks, platform, requested
):
    request = paid(webhooks, requested)
    options = {"stripe_account": request.stripe_account_id}
    real = platform.v1.refunds.create(
        {"payment_intent": request.payment_intent_id, "amount": 1000}, options
    )
    webhooks.wait_for_webhooks()
    process_received()
    claim = {
        "id": real.id,
        "object": "refund",
        "amount": 1000,
        "status": "failed",
        "failure_reason": "lost_or_stolen_card",
        "payment_intent": request.payment_intent_id,
    }
    post_event(client, event("refund.failed", claim, account=request.stripe_account_id))
    process_received()
    [row] = refund_rows()
    assert (row.state, row.failure_reason) == (RefundState.SUCCEEDED, "")
    assert (the_request().state, the_request().amount_refunded) == (
        PaymentState.PARTIALLY_REFUNDED,
        1000,
    )
