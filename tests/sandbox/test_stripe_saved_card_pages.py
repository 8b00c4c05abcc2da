"""Saving a card on the hosted page over plain HTTP, as a browser without JavaScript does
(with 3-D Secure when the card asks for it), and the signed Connect webhooks that saving and
charging a saved card send."""

import pytest
import requests
import stripe

from sandbox.common.control import ControlRefused
from tests.sandbox.stripe_helpers import WEBHOOK_SECRET, card_form, checkout_params, connect
from tests.sandbox.test_stripe_checkout_page import text_of
from tests.sandbox.test_stripe_saved_cards import (
    ALWAYS_AUTHENTICATE,
    RETURN_URL,
    charge,
    new_customer,
    on,
    setup_session,
)


@pytest.fixture
def clinic(stripe_api, stripe_sandbox) -> str:
    account = stripe_sandbox.create_account(business_name="Harbourside GP Clinic")
    return connect(stripe_sandbox, stripe_api, account["id"])


def submit(url: str, **fields: str) -> requests.Response:
    return requests.post(url, data=card_form(**fields), allow_redirects=False, timeout=5)


def test_the_page_saves_a_card_and_charges_nothing(stripe_api, clinic):
    customer = new_customer(stripe_api, clinic)
    session = setup_session(stripe_api, clinic, customer.id)

    page = requests.get(session.url, timeout=5)
    assert page.status_code == 200
    assert "Save your card with Harbourside GP Clinic" in text_of(page)
    assert "Nothing is charged now" in text_of(page)
    saved = submit(session.url)

    assert saved.status_code == 303
    assert (
        saved.headers["Location"]
        == f"http://127.0.0.1:9/calls/7/card-saved?session_id={session.id}"
    )
    assert "Card saved" in text_of(requests.get(session.url, timeout=5))
    assert stripe_api.v1.payment_intents.list(options=on(clinic)).data == []
    assert stripe_api.v1.charges.list(options=on(clinic)).data == []


def test_a_declined_card_is_shown_on_the_page(stripe_api, clinic):
    session = setup_session(stripe_api, clinic, new_customer(stripe_api, clinic).id)

    declined = submit(session.url, cardnumber="4000 0000 0000 9995")

    assert declined.status_code == 402
    assert "Your card has insufficient funds." in text_of(declined)
    assert 'value="Pat Citizen"' in declined.text  # kept for the next try


def test_a_3d_secure_card_is_challenged_before_it_is_saved(stripe_api, clinic):
    customer = new_customer(stripe_api, clinic)
    session = setup_session(stripe_api, clinic, customer.id)

    challenged = submit(session.url, cardnumber=ALWAYS_AUTHENTICATE)
    assert challenged.status_code == 303
    challenge_url = challenged.headers["Location"]
    waiting = stripe_api.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["setup_intent"]}, on(clinic)
    )
    assert waiting.setup_intent.status == "requires_action"
    assert waiting.setup_intent.next_action.redirect_to_url.url == challenge_url
    page = requests.get(challenge_url, timeout=5)
    assert "confirm that your card may be saved" in text_of(page)
    failed = requests.post(
        challenge_url, data={"outcome": "fail"}, allow_redirects=False, timeout=5
    )
    assert failed.status_code == 402
    again = submit(session.url, cardnumber=ALWAYS_AUTHENTICATE)
    done = requests.post(
        again.headers["Location"], data={"outcome": "complete"}, allow_redirects=False, timeout=5
    )

    assert done.status_code == 303 and "card-saved" in done.headers["Location"]
    listed = stripe_api.v1.customers.payment_methods.list(customer.id, options=on(clinic)).data
    assert [m.card.last4 for m in listed] == ["3184"]


def verified(delivery: dict) -> stripe.Event:
    return stripe.Webhook.construct_event(delivery["body"], delivery["signature"], WEBHOOK_SECRET)


def test_saving_and_charging_send_signed_connect_webhooks(
    stripe_api, stripe_sandbox, clinic, webhook_receiver
):
    customer = new_customer(stripe_api, clinic)
    session = setup_session(stripe_api, clinic, customer.id)
    saved = stripe_sandbox.pay(session.id, card=ALWAYS_AUTHENTICATE, authenticate=True)
    method_id = saved["setup_intent"]["payment_method"]
    with pytest.raises(stripe.CardError) as declined:
        charge(stripe_api, clinic, customer.id, method_id)
    waiting = stripe_api.v1.payment_intents.confirm(
        declined.value.error.payment_intent.id,
        {"payment_method": method_id, "return_url": RETURN_URL},
        on(clinic),
    )
    stripe_sandbox.authenticate_payment(waiting.id)
    stripe_sandbox.wait_for_webhooks()

    events = [verified(d) for d in webhook_receiver.received]
    assert [e.type for e in events] == [
        "customer.created",
        "setup_intent.created",
        "payment_method.attached",
        "setup_intent.succeeded",
        "checkout.session.completed",
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
        "payment_intent.requires_action",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]
    assert {e.account for e in events} == {clinic}
    completed = events[4].data.object
    assert (completed.mode, completed.setup_intent) == ("setup", saved["setup_intent"]["id"])
    succeeded = events[3].data.object
    assert succeeded.payment_method == method_id
    assert succeeded.metadata.to_dict() == {"call_id": "7", "clinic_id": "3"}
    failed = events[7].data.object
    assert failed.last_payment_error.code == "authentication_required"
    assert events[-1].data.object.metadata.to_dict() == {"payment_request_id": "31"}


def test_a_checkout_payment_is_not_authenticated_on_the_saved_card_page(
    stripe_api, stripe_sandbox, clinic
):
    session = stripe_api.v1.checkout.sessions.create(checkout_params(), on(clinic))
    waiting = stripe_sandbox.pay(session.id, card="4000002500003155")["payment_intent"]
    page = waiting["next_action"]["redirect_to_url"]["url"].split("/c/pay/")[0]
    secret = waiting["client_secret"]

    assert (
        requests.get(
            f"{page}/pay/authenticate/{waiting['id']}?client_secret={secret}", timeout=5
        ).status_code
        == 404
    )
    with pytest.raises(ControlRefused):
        stripe_sandbox.authenticate_payment(waiting["id"])
    assert stripe_api.v1.checkout.sessions.retrieve(session.id, options=on(clinic)).status == "open"
