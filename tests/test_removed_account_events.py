"""Events about a Stripe account vcpay no longer acts for are kept as not applicable.

The clinic admin removes the Stripe link while a payment request is open: vcpay closes its
Checkout page (Stripe then sends ``checkout.session.expired``) and disconnects the account, so
Stripe answers ``account_invalid`` when vcpay asks about that session. The event is kept,
marked ignored with the reason, and never retried to failure.
"""

import pytest
import stripe
from sqlalchemy import select

from tests.conftest import csrf_token, sign_in
from tests.payment_steps import (  # noqa: F401 - the fixtures
    ask,
    clinician_fixture,
    gp_fixture,
    join,
    start_call,
    stripe_platform,
    the_request,
)
from tests.stripe_events import event, post_event
from tests.stripe_standin import process_received, received, wait_for_events
from vcpay.client_payments.models import LinkState, StripeLink
from vcpay.extensions import db
from vcpay.payments.models import PaymentState
from vcpay.webhooks import services
from vcpay.webhooks.models import EventState, StripeEvent

CLINIC_ADMIN = "clinicadmin@harbourside.example"


@pytest.fixture
def admin(app, gp):
    browser = app.test_client()
    sign_in(browser, CLINIC_ADMIN)
    return browser


def remove(admin, clinic) -> None:
    path = f"/client-payments/clinics/{clinic.id}/stripe/remove"
    done = admin.post(path, data={"csrf_token": csrf_token(admin, path)})
    assert done.status_code == 303, done.get_data(as_text=True)


def test_an_expiry_after_remove_is_not_applicable_and_never_retried(
    app, admin, clinician, gp, webhooks
):
    call = start_call(clinician, gp)
    join(app, call)
    ask(clinician, call, "85.00")
    request = the_request()
    account = request.stripe_account_id

    remove(admin, gp)
    assert db.session.scalar(select(StripeLink)).state == LinkState.REMOVED
    assert webhooks.accounts()[account]["connected"] is False
    # Asked about the session now, Stripe answers as it does for a disconnected account.
    with pytest.raises(stripe.PermissionError) as refused:
        stripe_platform(app, webhooks).v1.checkout.sessions.retrieve(
            request.checkout_session_id, options={"stripe_account": account}
        )
    error = refused.value.json_body["error"]  # the library keeps a 403's code only here
    assert (refused.value.http_status, error["code"]) == (403, "account_invalid")
    [expired] = wait_for_events("checkout.session.expired")
    webhooks.wait_for_webhooks()
    process_received()

    [expired] = received("checkout.session.expired")
    assert (expired.state, expired.attempts) == (EventState.IGNORED, 1)
    assert expired.next_attempt_at is None
    assert account in expired.last_error and "no longer" in expired.last_error
    assert expired.payload  # kept whole: nothing is lost
    # A second look (the sweeper, a redelivery) changes nothing.
    services.process(expired.id)
    assert services.overdue_event_ids() == []
    assert db.session.get(StripeEvent, expired.id).attempts == 1
    assert the_request().state == PaymentState.CANCELLED
    # Every event of the removal (the deauthorization too) is settled; none waits or failed.
    assert {e.state for e in received()} <= {EventState.PROCESSED, EventState.IGNORED}


@pytest.mark.parametrize(
    "event_type",
    ["checkout.session.completed", "payment_intent.payment_failed", "charge.refunded"],
)
def test_any_payment_event_from_a_disconnected_account_is_not_applicable(
    app, client, clinician, gp, stripe_control, event_type
):
    call = start_call(clinician, gp)
    ask(clinician, call, "85.00")
    request = the_request()
    stripe_control.disconnect(request.stripe_account_id)  # in the clinic's own dashboard
    objects = {
        "checkout.session.completed": {
            "id": request.checkout_session_id, "object": "checkout.session",
            "status": "complete", "payment_status": "paid",
        },
        "payment_intent.payment_failed": {
            "id": "pi_gone", "object": "payment_intent",
            "metadata": {"payment_request": request.request_key},
        },
        "charge.refunded": {
            "id": "ch_gone", "object": "charge", "payment_intent": "pi_gone",
            "metadata": {"payment_request": request.request_key},
        },
    }  # fmt: skip
    body = event(event_type, objects[event_type], account=request.stripe_account_id)
    assert post_event(client, body).status_code == 200
    process_received()

    [stored] = received(event_type)
    assert (stored.state, stored.attempts, stored.next_attempt_at) == (
        EventState.IGNORED, 1, None,
    )  # fmt: skip
    assert request.stripe_account_id in stored.last_error
    assert the_request().state == PaymentState.REQUESTED
