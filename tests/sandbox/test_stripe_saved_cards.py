"""Saving a card for after the call and charging it later, through the real ``stripe``
library over HTTP: a setup-mode Checkout Session saves the card on the clinic's Customer;
off-session PaymentIntents charge it, are declined, or need the patient to authenticate on
the stand-in's 3-D Secure page; the card can be detached."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import stripe

from sandbox.common.control import ControlRefused
from tests.sandbox.stripe_helpers import connect

SETUP_SUCCESS_URL = "http://127.0.0.1:9/calls/7/card-saved?session_id={CHECKOUT_SESSION_ID}"
RETURN_URL = "http://127.0.0.1:9/payments/31/authenticated"
ALWAYS_AUTHENTICATE = "4000002760003184"
DECLINES_WHEN_CHARGED = "4000000000000341"


@pytest.fixture
def clinic(stripe_api, stripe_sandbox) -> str:
    return connect(stripe_sandbox, stripe_api)


def on(account: str) -> dict[str, str]:
    return {"stripe_account": account}


def new_customer(stripe_api, clinic, **fields):
    params = {"email": "pat@example.com", "name": "Pat Citizen", **fields}
    return stripe_api.v1.customers.create(params, on(clinic))


def setup_session(stripe_api, clinic, customer_id: str, **overrides):
    params = {
        "mode": "setup",
        "currency": "aud",
        "customer": customer_id,
        "setup_intent_data": {"metadata": {"call_id": "7", "clinic_id": "3"}},
        "success_url": SETUP_SUCCESS_URL,
        **overrides,
    }
    return stripe_api.v1.checkout.sessions.create(params, on(clinic))


def saved_card(stripe_api, stripe_sandbox, clinic, card: str = "4242424242424242"):
    """A customer with a card saved on a setup-mode session: (customer id, pm id)."""
    customer = new_customer(stripe_api, clinic)
    session = setup_session(stripe_api, clinic, customer.id)
    saved = stripe_sandbox.pay(session.id, card=card, authenticate=True)
    assert saved["outcome"] == "succeeded"
    return customer.id, saved["setup_intent"]["payment_method"]


def charge(stripe_api, clinic, customer_id, method_id, key=None, **overrides):
    params = {
        "amount": 4500,
        "currency": "aud",
        "customer": customer_id,
        "payment_method": method_id,
        "off_session": True,
        "confirm": True,
        "description": "Follow-up consultation",
        "metadata": {"payment_request_id": "31"},
        **overrides,
    }
    params = {k: v for k, v in params.items() if v is not None}
    options = {**on(clinic), **({"idempotency_key": key} if key else {})}
    return stripe_api.v1.payment_intents.create(params, options)


def test_a_setup_session_saves_the_card_on_the_customer(stripe_api, stripe_sandbox, clinic):
    customer = new_customer(stripe_api, clinic, email=None)
    session = setup_session(stripe_api, clinic, customer.id)

    assert (session.mode, session.status, session.payment_status) == (
        "setup",
        "open",
        "no_payment_required",
    )
    assert session.amount_total is None and session.setup_intent is None
    assert session.customer == customer.id and session.url.endswith(f"/c/pay/{session.id}")

    saved = stripe_sandbox.pay(session.id, email="pat@example.org", expiry="08 / 31")
    done = stripe_api.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["setup_intent.payment_method"]}, on(clinic)
    )

    assert saved["outcome"] == "succeeded"
    assert (done.status, done.payment_status, done.url) == ("complete", "no_payment_required", None)
    setup_intent = done.setup_intent
    assert setup_intent.id.startswith("seti_") and setup_intent.status == "succeeded"
    assert setup_intent.usage == "off_session" and setup_intent.customer == customer.id
    assert setup_intent.metadata.to_dict() == {"call_id": "7", "clinic_id": "3"}
    card = setup_intent.payment_method.card
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == ("visa", "4242", 8, 2031)
    assert setup_intent.payment_method.customer == customer.id
    by_session = stripe_api.v1.checkout.sessions.list({"customer": customer.id}, on(clinic))
    assert [s.id for s in by_session.data] == [session.id]
    listed = stripe_api.v1.customers.payment_methods.list(customer.id, {"type": "card"}, on(clinic))
    assert [m.id for m in listed.data] == [setup_intent.payment_method.id]
    by_customer = stripe_api.v1.payment_methods.list(
        {"customer": customer.id, "type": "card"}, on(clinic)
    )
    assert [m.id for m in by_customer.data] == [setup_intent.payment_method.id]
    # Checkout sets the email typed in on a Customer that had none.
    assert stripe_api.v1.customers.retrieve(customer.id, options=on(clinic)).email == (
        "pat@example.org"
    )


def test_setup_mode_is_read_as_stripe_reads_it(stripe_api, clinic):
    customer = new_customer(stripe_api, clinic)
    refusals = [
        ({"currency": None}, "currency"),
        ({"line_items": [{"price": "price_1", "quantity": 1}]}, "line_items"),
        ({"customer_email": "pat@example.com"}, "customer_email"),
        ({"customer": "cus_missing0000000"}, "customer"),
        ({"setup_intent_data": {"on_behalf_of": "acct_1"}}, "setup_intent_data[on_behalf_of]"),
        ({"allowed_payment_method_types": ["au_becs_debit"]}, "allowed_payment_method_types"),
    ]
    for change, param in refusals:
        params = {
            "mode": "setup",
            "currency": "aud",
            "customer": customer.id,
            "success_url": SETUP_SUCCESS_URL,
            **change,
        }
        params = {k: v for k, v in params.items() if v is not None}
        with pytest.raises(stripe.InvalidRequestError) as refused:
            stripe_api.v1.checkout.sessions.create(params, on(clinic))
        assert refused.value.param == param, change
    without_currency = setup_session(
        stripe_api, clinic, customer.id, currency=None, allowed_payment_method_types=["card"]
    )
    assert without_currency.currency is None
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_api.v1.checkout.sessions.create(
            {"mode": "payment", "customer": customer.id, "success_url": SETUP_SUCCESS_URL},
            on(clinic),
        )
    assert refused.value.param == "customer"


def test_a_declined_card_is_not_saved_and_the_session_stays_open(
    stripe_api, stripe_sandbox, clinic
):
    customer = new_customer(stripe_api, clinic)
    session = setup_session(stripe_api, clinic, customer.id)

    declined = stripe_sandbox.pay(session.id, card="4000000000000002")

    assert declined["outcome"] == "declined"
    assert declined["setup_intent"]["status"] == "requires_payment_method"
    assert declined["setup_intent"]["last_setup_error"]["decline_code"] == "generic_decline"
    assert stripe_api.v1.checkout.sessions.retrieve(session.id, options=on(clinic)).status == "open"
    assert stripe_api.v1.customers.payment_methods.list(customer.id, options=on(clinic)).data == []
    assert stripe_sandbox.pay(session.id)["outcome"] == "succeeded"  # another card saves


def test_customer_creation_always_makes_the_customer(stripe_api, stripe_sandbox, clinic):
    session = stripe_api.v1.checkout.sessions.create(
        {
            "mode": "setup",
            "currency": "aud",
            "customer_creation": "always",
            "customer_email": "sam@example.com",
            "success_url": SETUP_SUCCESS_URL,
        },
        on(clinic),
    )
    saved = stripe_sandbox.pay(session.id, email="sam@example.com", name="Sam Lee")

    customer = stripe_api.v1.customers.retrieve(saved["session"]["customer"], options=on(clinic))
    assert (customer.email, customer.name) == ("sam@example.com", "Sam Lee")
    assert saved["setup_intent"]["customer"] == customer.id


def test_off_session_charge_succeeds_and_can_be_refunded(stripe_api, stripe_sandbox, clinic):
    customer_id, method_id = saved_card(stripe_api, stripe_sandbox, clinic)

    payment_intent = charge(stripe_api, clinic, customer_id, method_id)

    assert payment_intent.status == "succeeded" and payment_intent.amount_received == 4500
    assert (payment_intent.customer, payment_intent.payment_method) == (customer_id, method_id)
    assert payment_intent.metadata.to_dict() == {"payment_request_id": "31"}
    paid = stripe_api.v1.charges.retrieve(payment_intent.latest_charge, options=on(clinic))
    assert (paid.status, paid.customer, paid.payment_method_details.card.last4) == (
        "succeeded",
        customer_id,
        "4242",
    )
    refund = stripe_api.v1.refunds.create(
        {"payment_intent": payment_intent.id, "amount": 1000}, on(clinic)
    )
    assert refund.status == "succeeded"
    events = [e["type"] for e in stripe_sandbox.events(account=clinic)]
    assert events[-5:] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "charge.refunded",
        "refund.created",
    ]


def test_a_card_that_declines_when_charged(stripe_api, stripe_sandbox, clinic):
    customer_id, method_id = saved_card(stripe_api, stripe_sandbox, clinic, DECLINES_WHEN_CHARGED)

    with pytest.raises(stripe.CardError) as declined:
        charge(stripe_api, clinic, customer_id, method_id)

    error = declined.value.error
    assert declined.value.http_status == 402
    assert (error.code, error.decline_code) == ("card_declined", "generic_decline")
    assert error.payment_intent.status == "requires_payment_method"
    kept = stripe_api.v1.payment_intents.retrieve(error.payment_intent.id, options=on(clinic))
    assert kept.status == "requires_payment_method"
    assert kept.last_payment_error.code == "card_declined"
    assert stripe_sandbox.events(account=clinic)[-1]["type"] == "payment_intent.payment_failed"


def test_a_saved_card_can_be_made_to_decline_later(stripe_api, stripe_sandbox, clinic):
    customer_id, method_id = saved_card(stripe_api, stripe_sandbox, clinic)
    stripe_sandbox.card_behaves_as(method_id, "4000000000009995")

    with pytest.raises(stripe.CardError) as declined:
        charge(stripe_api, clinic, customer_id, method_id)

    assert declined.value.error.decline_code == "insufficient_funds"
    stripe_sandbox.card_behaves_as(method_id, "4242424242424242")
    assert charge(stripe_api, clinic, customer_id, method_id).status == "succeeded"
    with pytest.raises(ControlRefused):
        stripe_sandbox.card_behaves_as(method_id, "1234")


def test_a_card_that_needs_authentication_is_completed_on_the_hosted_page(
    stripe_api, stripe_sandbox, clinic
):
    customer_id, method_id = saved_card(stripe_api, stripe_sandbox, clinic, ALWAYS_AUTHENTICATE)

    with pytest.raises(stripe.CardError) as declined:
        charge(stripe_api, clinic, customer_id, method_id)
    error = declined.value.error
    assert (error.code, error.decline_code) == ("authentication_required",) * 2
    assert error.payment_intent.status == "requires_payment_method"

    # The patient is brought back: confirmed on-session, with a return_url.
    waiting = stripe_api.v1.payment_intents.confirm(
        error.payment_intent.id,
        {"payment_method": method_id, "return_url": RETURN_URL},
        on(clinic),
    )
    assert waiting.status == "requires_action"
    assert waiting.next_action.type == "redirect_to_url"
    page_url = waiting.next_action.redirect_to_url.url
    page = requests.get(page_url, timeout=5)
    assert page.status_code == 200 and "Complete authentication" in page.text
    answer = requests.post(page_url, data={"outcome": "complete"}, allow_redirects=False, timeout=5)

    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert location.startswith(RETURN_URL + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["payment_intent"] == waiting.id and query["redirect_status"] == "succeeded"
    done = stripe_api.v1.payment_intents.retrieve(
        waiting.id, {"expand": ["latest_charge"]}, on(clinic)
    )
    assert done.status == "succeeded"
    assert done.latest_charge.payment_method_details.card.three_d_secure.result == "authenticated"
    types = [e["type"] for e in stripe_sandbox.events(account=clinic)]
    assert types[-3:] == [
        "payment_intent.requires_action",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]


def test_failed_authentication_leaves_the_payment_unpaid(stripe_api, stripe_sandbox, clinic):
    customer_id, method_id = saved_card(stripe_api, stripe_sandbox, clinic, ALWAYS_AUTHENTICATE)
    with pytest.raises(stripe.CardError) as declined:
        charge(stripe_api, clinic, customer_id, method_id)
    waiting = stripe_api.v1.payment_intents.confirm(
        declined.value.error.payment_intent.id,
        {"payment_method": method_id, "return_url": RETURN_URL},
        on(clinic),
    )

    answer = stripe_sandbox.authenticate_payment(waiting.id, completed=False)

    assert "redirect_status=failed" in answer["next_url"]
    failed = stripe_api.v1.payment_intents.retrieve(waiting.id, options=on(clinic))
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error.code == "payment_intent_authentication_failure"
    assert requests.get(waiting.next_action.redirect_to_url.url, timeout=5).status_code == 200
    with pytest.raises(ControlRefused):  # the page's link no longer completes it
        stripe_sandbox.authenticate_payment(waiting.id)
    wrong_secret = waiting.next_action.redirect_to_url.url.split("?")[0] + "?client_secret=x"
    assert requests.get(wrong_secret, timeout=5).status_code == 404


def test_a_detached_card_is_gone_and_cannot_be_charged(stripe_api, stripe_sandbox, clinic):
    customer_id, method_id = saved_card(stripe_api, stripe_sandbox, clinic)

    detached = stripe_api.v1.payment_methods.detach(method_id, options=on(clinic))

    assert detached.customer is None
    assert stripe_api.v1.customers.payment_methods.list(customer_id, options=on(clinic)).data == []
    with pytest.raises(stripe.InvalidRequestError) as refused:
        charge(stripe_api, clinic, customer_id, method_id)
    assert "may not be used again" in refused.value.user_message
    with pytest.raises(stripe.InvalidRequestError):
        stripe_api.v1.payment_methods.attach(method_id, {"customer": customer_id}, on(clinic))
    with pytest.raises(stripe.InvalidRequestError):
        stripe_api.v1.payment_methods.detach(method_id, options=on(clinic))
    assert stripe_sandbox.events(account=clinic)[-1]["type"] == "payment_method.detached"


def test_an_idempotency_key_charges_once(stripe_api, stripe_sandbox, clinic):
    customer_id, method_id = saved_card(stripe_api, stripe_sandbox, clinic)

    first = charge(stripe_api, clinic, customer_id, method_id, key="payreq-31-charge")
    again = charge(stripe_api, clinic, customer_id, method_id, key="payreq-31-charge")

    assert again.id == first.id
    charges = stripe_api.v1.charges.list(options=on(clinic)).data
    assert [c.payment_intent for c in charges] == [first.id]
    with pytest.raises(stripe.IdempotencyError):
        charge(stripe_api, clinic, customer_id, method_id, key="payreq-31-charge", amount=4600)


def test_a_declined_charge_is_replayed_for_its_key(stripe_api, stripe_sandbox, clinic):
    customer_id, method_id = saved_card(stripe_api, stripe_sandbox, clinic, DECLINES_WHEN_CHARGED)
    errors = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as declined:
            charge(stripe_api, clinic, customer_id, method_id, key="payreq-32-charge")
        errors.append(declined.value.error.payment_intent.id)

    assert errors[0] == errors[1]
    assert len(stripe_api.v1.payment_intents.list(options=on(clinic)).data) == 1


def test_another_accounts_objects_do_not_exist(stripe_api, stripe_sandbox, clinic):
    customer_id, method_id = saved_card(stripe_api, stripe_sandbox, clinic)
    paid = charge(stripe_api, clinic, customer_id, method_id)
    setup_intent = stripe_api.v1.setup_intents.list({"customer": customer_id}, on(clinic)).data[0]
    other = connect(stripe_sandbox, stripe_api)

    for read in (
        lambda: stripe_api.v1.customers.retrieve(customer_id, options=on(other)),
        lambda: stripe_api.v1.payment_methods.retrieve(method_id, options=on(other)),
        lambda: stripe_api.v1.setup_intents.retrieve(setup_intent.id, options=on(other)),
        lambda: stripe_api.v1.payment_intents.retrieve(paid.id, options=on(other)),
        lambda: stripe_api.v1.customers.payment_methods.list(customer_id, options=on(other)),
    ):
        with pytest.raises(stripe.InvalidRequestError) as missing:
            read()
        assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    other_customer = new_customer(stripe_api, other)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        charge(stripe_api, other, other_customer.id, method_id)
    assert (missing.value.code, missing.value.param) == ("resource_missing", "payment_method")


def test_a_card_of_another_customer_is_refused(stripe_api, stripe_sandbox, clinic):
    _, method_id = saved_card(stripe_api, stripe_sandbox, clinic)
    someone_else = new_customer(stripe_api, clinic, email="sam@example.com")

    with pytest.raises(stripe.InvalidRequestError) as refused:
        charge(stripe_api, clinic, someone_else.id, method_id)
    assert refused.value.param == "payment_method"
    with pytest.raises(stripe.InvalidRequestError) as refused:
        charge(stripe_api, clinic, None, method_id)
    assert refused.value.param == "customer"
