"""Customers on a connected account, what deleting one does to its cards, setup-mode
sessions that expire, lists by customer, and saved cards kept across a restart."""

import pytest
import stripe

from sandbox.stripe.control_client import StripeControl
from tests.sandbox.stripe_helpers import connect, stripe_client
from tests.sandbox.test_stripe_saved_cards import (
    charge,
    new_customer,
    on,
    saved_card,
    setup_session,
)


@pytest.fixture
def clinic(stripe_api, stripe_sandbox) -> str:
    return connect(stripe_sandbox, stripe_api)


def test_customers_are_created_updated_and_listed(stripe_api, clinic):
    customer = new_customer(stripe_api, clinic, metadata={"patient": "p-9"})
    updated = stripe_api.v1.customers.update(
        customer.id, {"name": "Pat Q. Citizen", "metadata": {"patient": ""}}, on(clinic)
    )

    assert customer.id.startswith("cus_") and updated.name == "Pat Q. Citizen"
    assert updated.metadata.to_dict() == {}
    found = stripe_api.v1.customers.list({"email": "pat@example.com"}, on(clinic)).data
    assert [c.id for c in found] == [customer.id]
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_api.v1.customers.create({"email": "not-an-email"}, on(clinic))
    assert refused.value.code == "email_invalid"


def test_saved_cards_survive_a_restart(other_stripe_standin, tmp_path):
    state_file = str(tmp_path / "stripe-state.json")
    url = other_stripe_standin(state_file=state_file)
    sandbox, client = StripeControl(url), stripe_client(url)
    clinic = connect(sandbox, client)
    customer_id, method_id = saved_card(client, sandbox, clinic)

    again = stripe_client(other_stripe_standin(state_file=state_file))
    listed = again.v1.customers.payment_methods.list(customer_id, options=on(clinic)).data
    assert [m.id for m in listed] == [method_id]


def test_a_deleted_customer_loses_its_cards(stripe_api, stripe_sandbox, clinic):
    customer_id, method_id = saved_card(stripe_api, stripe_sandbox, clinic)

    gone = stripe_api.v1.customers.delete(customer_id, options=on(clinic))

    assert gone.deleted is True
    assert stripe_api.v1.customers.retrieve(customer_id, options=on(clinic)).deleted is True
    assert stripe_api.v1.payment_methods.retrieve(method_id, options=on(clinic)).customer is None
    with pytest.raises(stripe.InvalidRequestError) as missing:
        setup_session(stripe_api, clinic, customer_id)
    assert (missing.value.code, missing.value.param) == ("resource_missing", "customer")


def test_an_expired_setup_session_cancels_its_setup_intent(stripe_api, stripe_sandbox, clinic):
    session = setup_session(stripe_api, clinic, new_customer(stripe_api, clinic).id)
    stripe_sandbox.pay(session.id, card="4000000000000002")

    expired = stripe_api.v1.checkout.sessions.expire(
        session.id, {"expand": ["setup_intent"]}, on(clinic)
    )

    assert expired.status == "expired"
    assert (expired.setup_intent.status, expired.setup_intent.cancellation_reason) == (
        "canceled",
        "abandoned",
    )
    assert stripe_sandbox.events(account=clinic)[-2]["type"] == "setup_intent.canceled"


def test_payments_are_listed_by_customer(stripe_api, stripe_sandbox, clinic):
    customer_id, method_id = saved_card(stripe_api, stripe_sandbox, clinic)
    paid = charge(stripe_api, clinic, customer_id, method_id)
    other = new_customer(stripe_api, clinic, email="sam@example.com")

    mine = stripe_api.v1.payment_intents.list({"customer": customer_id}, on(clinic)).data
    theirs = stripe_api.v1.charges.list({"customer": other.id}, on(clinic)).data

    assert [p.id for p in mine] == [paid.id] and theirs == []


def test_a_setup_intent_made_through_the_api_waits_until_canceled(stripe_api, clinic):
    customer = new_customer(stripe_api, clinic)

    made = stripe_api.v1.setup_intents.create(
        {"customer": customer.id, "metadata": {"call_id": "7"}}, on(clinic)
    )
    canceled = stripe_api.v1.setup_intents.cancel(
        made.id, {"cancellation_reason": "abandoned"}, on(clinic)
    )

    assert (made.status, made.usage, made.customer) == (
        "requires_payment_method",
        "off_session",
        customer.id,
    )
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_api.v1.setup_intents.cancel(made.id, options=on(clinic))
    assert refused.value.code == "setup_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_api.v1.setup_intents.create({"confirm": True}, on(clinic))
    assert refused.value.param == "confirm"
