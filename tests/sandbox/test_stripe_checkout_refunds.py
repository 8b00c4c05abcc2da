"""Refunds of Checkout payments, PaymentIntents and Charges through the real library, and
the state file keeping all of them."""

import json
import time

import pytest
import requests
import stripe

from sandbox.stripe.control_client import StripeControl
from tests.sandbox.stripe_helpers import (
    checkout_params,
    connect,
    start_stripe_standin,
    stop_stripe_standin,
    stripe_client,
)


def paid_session(client, sandbox, account: str) -> stripe.checkout.Session:
    session = client.v1.checkout.sessions.create(checkout_params(), {"stripe_account": account})
    sandbox.pay(session.id)
    return client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["payment_intent"]}, {"stripe_account": account}
    )


@pytest.fixture
def clinic(stripe_api, stripe_sandbox) -> str:
    return connect(stripe_sandbox, stripe_api)


@pytest.fixture
def payment_intent(stripe_api, stripe_sandbox, clinic):
    return paid_session(stripe_api, stripe_sandbox, clinic).payment_intent


def test_a_partial_then_the_rest(stripe_api, stripe_sandbox, clinic, payment_intent):
    options = {"stripe_account": clinic}

    partial = stripe_api.v1.refunds.create(
        {"payment_intent": payment_intent.id, "amount": 2000},
        {**options, "idempotency_key": "vcpay-payreq-12-refund-1"},
    )
    after_partial = stripe_api.v1.charges.retrieve(payment_intent.latest_charge, options=options)
    rest = stripe_api.v1.refunds.create(
        {"charge": payment_intent.latest_charge, "reason": "requested_by_customer"}, options
    )
    charge = stripe_api.v1.charges.retrieve(payment_intent.latest_charge, options=options)
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_api.v1.refunds.create({"payment_intent": payment_intent.id}, options)

    assert partial.id.startswith("re_") and partial.object == "refund"
    assert (partial.status, partial.amount, partial.currency) == ("succeeded", 2000, "aud")
    assert (partial.payment_intent, partial.charge) == (payment_intent.id, charge.id)
    assert (after_partial.amount_refunded, after_partial.refunded) == (2000, False)
    assert (rest.amount, rest.reason) == (6500, "requested_by_customer")
    assert (charge.amount_refunded, charge.refunded) == (8500, True)
    assert [r.id for r in charge.refunds.data] == [rest.id, partial.id]
    assert again.value.code == "charge_already_refunded"
    assert again.value.user_message == f"Charge {charge.id} has already been refunded."

    refunded = stripe_sandbox.events(account=clinic, type="charge.refunded")
    created = stripe_sandbox.events(account=clinic, type="refund.created")
    assert [e["data"]["object"]["amount_refunded"] for e in refunded] == [2000, 8500]
    assert refunded[0]["data"]["previous_attributes"] == {"amount_refunded": 0}
    assert refunded[1]["data"]["previous_attributes"] == {
        "amount_refunded": 2000,
        "refunded": False,
    }
    assert refunded[0]["request"]["idempotency_key"] == "vcpay-payreq-12-refund-1"
    assert [e["data"]["object"]["id"] for e in created] == [partial.id, rest.id]
    types = [e["type"] for e in stripe_sandbox.events(account=clinic)]
    assert types.index("charge.refunded") < types.index("refund.created")


def test_refund_events_reach_the_webhook(stripe_api, stripe_sandbox, webhook_receiver):
    from tests.sandbox.test_stripe_checkout_page import verified

    account = connect(stripe_sandbox, stripe_api)
    payment_intent = paid_session(stripe_api, stripe_sandbox, account).payment_intent
    stripe_api.v1.refunds.create({"payment_intent": payment_intent.id}, {"stripe_account": account})
    stripe_sandbox.wait_for_webhooks()

    events = [verified(d) for d in webhook_receiver.wait_for(7)]

    assert [e.type for e in events][-2:] == ["charge.refunded", "refund.created"]
    charge = events[-2].data.object
    assert (charge.object, charge.refunded, charge.amount_refunded) == ("charge", True, 8500)
    assert events[-2].account == account


def test_refusals(stripe_api, stripe_sandbox, clinic, payment_intent):
    options = {"stripe_account": clinic}
    open_session = stripe_api.v1.checkout.sessions.create(checkout_params(), options)
    stripe_sandbox.pay(open_session.id, card="4000000000000002")
    unpaid = stripe_api.v1.checkout.sessions.retrieve(open_session.id, options=options)
    other = connect(stripe_sandbox, stripe_api)

    def refused(params, account=clinic):
        with pytest.raises(stripe.InvalidRequestError) as error:
            stripe_api.v1.refunds.create(params, {"stripe_account": account})
        return error.value

    too_much = refused({"payment_intent": payment_intent.id, "amount": 8501})
    assert (too_much.code, too_much.param) == ("amount_too_large", "amount")
    assert too_much.user_message == (
        "Refund amount (A$85.01) is greater than unrefunded amount on charge (A$85.00)"
    )
    assert refused({"payment_intent": payment_intent.id, "amount": 0}).param == "amount"
    assert refused({}).param == "payment_intent"
    not_paid = refused({"payment_intent": unpaid.payment_intent})
    assert not_paid.user_message == (
        f"This PaymentIntent ({unpaid.payment_intent}) does not have a successful charge to refund."
    )
    elsewhere = refused({"payment_intent": payment_intent.id}, other)
    assert (elsewhere.http_status, elsewhere.code) == (404, "resource_missing")
    assert refused({"payment_intent": payment_intent.id, "colour": "red"}).param == "colour"
    assert refused({"payment_intent": payment_intent.id, "reason": "bored"}).param == "reason"


def test_retrieve_and_list(stripe_api, stripe_sandbox, clinic, payment_intent):
    options = {"stripe_account": clinic}
    second = paid_session(stripe_api, stripe_sandbox, clinic).payment_intent
    refund = stripe_api.v1.refunds.create({"payment_intent": second.id, "amount": 100}, options)

    found = stripe_api.v1.refunds.retrieve(refund.id, {"expand": ["charge"]}, options)
    refunds = stripe_api.v1.refunds.list({"payment_intent": second.id}, options)
    none = stripe_api.v1.refunds.list({"payment_intent": payment_intent.id}, options)
    intents = stripe_api.v1.payment_intents.list(options=options)
    charges = stripe_api.v1.charges.list({"payment_intent": payment_intent.id}, options)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_api.v1.payment_intents.retrieve("pi_missing", options=options)

    assert found.charge.id == second.latest_charge and found.charge.amount_refunded == 100
    assert [r.id for r in refunds.data] == [refund.id] and none.data == []
    assert [p.id for p in intents.data] == [second.id, payment_intent.id]
    assert [c.id for c in charges.data] == [payment_intent.latest_charge]
    assert missing.value.user_message == "No such payment_intent: 'pi_missing'"


def test_the_state_file_keeps_payments_and_the_clock_expires_late_sessions(tmp_path):
    state_file = tmp_path / "stripe-state.json"
    url, server = start_stripe_standin(state_file=str(state_file))
    client, sandbox = stripe_client(url), StripeControl(url)
    account = connect(sandbox, client)
    paid = paid_session(client, sandbox, account)
    refund = client.v1.refunds.create(
        {"payment_intent": paid.payment_intent.id, "amount": 500}, {"stripe_account": account}
    )
    late = client.v1.checkout.sessions.create(checkout_params(), {"stripe_account": account})
    stop_stripe_standin(server)
    # The stand-in was off while the session's time ran out.
    data = json.loads(state_file.read_text())
    for obj in data["objects"][account]:
        if obj["id"] == late.id:
            obj["expires_at"] = obj["created"] - 1
    state_file.write_text(json.dumps(data))

    url, server = start_stripe_standin(state_file=str(state_file), checkout_expiry_seconds=0.1)
    try:
        client, sandbox = stripe_client(url), StripeControl(url)
        options = {"stripe_account": account}
        found = client.v1.checkout.sessions.retrieve(
            paid.id, {"expand": ["payment_intent.latest_charge"]}, options
        )
        kept_refund = client.v1.refunds.retrieve(refund.id, options=options)
        # Only the clock expires a session here: reading events does not look at sessions.
        deadline = time.monotonic() + 30
        while not (expired := sandbox.events(type="checkout.session.expired")):
            assert time.monotonic() < deadline, "the clock did not expire the session"
            time.sleep(0.05)
        late_now = client.v1.checkout.sessions.retrieve(late.id, options=options)
    finally:
        stop_stripe_standin(server)

    assert (found.status, found.payment_intent.status) == ("complete", "succeeded")
    assert found.payment_intent.latest_charge.amount_refunded == 500
    assert kept_refund.amount == 500
    assert [(e["account"], e["data"]["object"]["id"]) for e in expired] == [(account, late.id)]
    assert (late_now.status, late_now.url) == ("expired", None)


def test_reading_a_session_past_its_time_expires_it_at_once(tmp_path):
    state_file = tmp_path / "stripe-state.json"
    url, server = start_stripe_standin(state_file=str(state_file))
    client, sandbox = stripe_client(url), StripeControl(url)
    account = connect(sandbox, client)
    late = client.v1.checkout.sessions.create(checkout_params(), {"stripe_account": account})
    stop_stripe_standin(server)
    data = json.loads(state_file.read_text())
    for obj in data["objects"][account]:
        if obj["id"] == late.id:
            obj["expires_at"] = obj["created"] - 1
    state_file.write_text(json.dumps(data))

    # A clock that would not come round for an hour: the read itself notices.
    url, server = start_stripe_standin(state_file=str(state_file), checkout_expiry_seconds=3600)
    try:
        found = stripe_client(url).v1.checkout.sessions.retrieve(
            late.id, options={"stripe_account": account}
        )
        page = requests.get(f"{url}/c/pay/{late.id}", timeout=5)
        events = StripeControl(url).events(type="checkout.session.expired")
    finally:
        stop_stripe_standin(server)

    assert (found.status, found.url) == ("expired", None)
    assert "This checkout has expired" in page.text
    assert len(events) == 1
