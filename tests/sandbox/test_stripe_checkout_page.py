"""The hosted pay page over plain HTTP, as a browser without JavaScript uses it: test cards,
declines and retries, 3-D Secure, delayed payments; and the events each step sends, verified
as vcpay verifies them."""

import re
from html import unescape

import pytest
import requests
import stripe

from tests.sandbox.stripe_helpers import (
    CANCEL_URL,
    WEBHOOK_SECRET,
    card_form,
    checkout_params,
    connect,
)


@pytest.fixture
def clinic(stripe_api, stripe_sandbox) -> str:
    account = stripe_sandbox.create_account(business_name="Harbourside GP Clinic")
    return connect(stripe_sandbox, stripe_api, account["id"])


@pytest.fixture
def session(stripe_api, clinic):
    return stripe_api.v1.checkout.sessions.create(
        checkout_params(customer_email="pat@example.com"), {"stripe_account": clinic}
    )


def submit(url: str, **fields: str) -> requests.Response:
    return requests.post(url, data=card_form(**fields), allow_redirects=False, timeout=5)


def text_of(page: requests.Response) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text)))


def verified(delivery: dict) -> stripe.Event:
    return stripe.Webhook.construct_event(delivery["body"], delivery["signature"], WEBHOOK_SECRET)


def retrieve(stripe_api, clinic, session_id):
    return stripe_api.v1.checkout.sessions.retrieve(
        session_id, {"expand": ["payment_intent.latest_charge"]}, {"stripe_account": clinic}
    )


def test_the_page_shows_what_is_paid_for_and_the_form(session):
    page = requests.get(session.url, timeout=5)
    html = page.text

    assert page.status_code == 200
    text = text_of(page)
    assert "Local test stand-in for Stripe Checkout" in text
    assert "Harbourside GP Clinic" in text and "Consultation" in text
    assert "A$85.00" in text
    for label in ("Email", "Card number", "Expiry", "CVC", "Name on card"):
        assert re.search(rf'<label for="\w+">{label}</label>', html), label
    assert 'value="pat@example.com"' in html
    assert 'placeholder="MM / YY"' in html
    assert re.search(r"<button[^>]*>Pay A\$85\.00</button>", html)
    assert f'href="{CANCEL_URL}"' in html and "Back</a>" in html
    assert "4242 4242 4242 4242" in text and "4000 0025 0000 3155" in text
    assert "Simulate a delayed payment method (e.g. BECS Direct Debit)" in text


def test_paying_with_4242_goes_to_the_success_url(stripe_api, clinic, session):
    paid = submit(session.url, name="Pat Citizen")
    found = retrieve(stripe_api, clinic, session.id)

    assert paid.status_code == 303
    assert paid.headers["Location"] == (
        f"http://127.0.0.1:9/payments/12/done?session_id={session.id}"
    )
    assert (found.status, found.payment_status, found.url) == ("complete", "paid", None)
    assert found.customer_details.email == "patient@example.com"
    assert found.customer_details.name == "Pat Citizen"
    payment_intent = found.payment_intent
    assert payment_intent.id.startswith("pi_")
    assert (payment_intent.status, payment_intent.amount, payment_intent.currency) == (
        "succeeded",
        8500,
        "aud",
    )
    assert payment_intent.description == "Telehealth consultation with Dr Lee"
    assert payment_intent.metadata.to_dict() == {
        "payment_request_id": "12",
        "clinic_id": "3",
        "call_id": "7",
    }
    assert payment_intent.receipt_email == "patient@example.com"
    assert payment_intent.payment_method_types == ["card"]
    charge = payment_intent.latest_charge
    assert (charge.paid, charge.status, charge.amount, charge.amount_captured) == (
        True,
        "succeeded",
        8500,
        8500,
    )
    assert (charge.amount_refunded, charge.refunded) == (0, False)
    assert charge.payment_intent == payment_intent.id
    assert charge.billing_details.email == "patient@example.com"
    assert charge.billing_details.name == "Pat Citizen"
    card = charge.payment_method_details.card
    assert (card.brand, card.last4, card.exp_month) == ("visa", "4242", 12)
    assert charge.receipt_url.endswith(f"/receipts/payment/{charge.id}")
    receipt = requests.get(charge.receipt_url, timeout=5)
    assert charge.receipt_number in receipt.text and "A$85.00" in receipt.text


def test_a_paid_session_page_says_so(session):
    submit(session.url)

    page = requests.get(session.url, timeout=5)
    again = submit(session.url)

    assert "Payment complete" in page.text and "<form" not in page.text
    assert again.status_code == 409 and "<form" not in again.text


def test_an_expired_session_page_says_so(stripe_api, clinic, session):
    stripe_api.v1.checkout.sessions.expire(session.id, options={"stripe_account": clinic})

    page = requests.get(session.url, timeout=5)

    assert "This checkout has expired" in page.text and "<form" not in page.text


def test_an_unknown_session_is_not_found(stripe_url):
    assert requests.get(f"{stripe_url}/c/pay/cs_test_nope", timeout=5).status_code == 404


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": "pat"}, "email", "Your email address is invalid."),
        ({"card": "4242 4242 4242 4241"}, "cardnumber", "Your card number is invalid."),
        ({"card": "4242 4242"}, "cardnumber", "Your card number is incomplete."),
        ({"expiry": "01 / 20"}, "expiry", "Your card's expiration date is in the past."),
        ({"expiry": "13 / 40"}, "expiry", "Your card's expiration date is invalid. Use MM / YY."),
        ({"cvc": "12"}, "cvc", "Your card's security code is incomplete."),
        ({"cvc": "12a"}, "cvc", "Your card's security code is invalid."),
        ({"name": ""}, "name", "Enter the name on the card."),
    ],
)
def test_the_form_checks_each_field(stripe_sandbox, session, fields, field, message):
    answer = submit(session.url, **fields)

    assert answer.status_code == 400
    assert f'<p class="field-error" id="{field}-error">{message}</p>' in unescape(answer.text)
    assert f'id="{field}" name="{field}"' in answer.text
    assert stripe_sandbox.events(type="payment_intent.created") == []


@pytest.mark.parametrize(
    ("card", "code", "decline_code", "message"),
    [
        ("4000 0000 0000 0002", "card_declined", "generic_decline", "Your card was declined."),
        (
            "4000 0000 0000 9995",
            "card_declined",
            "insufficient_funds",
            "Your card has insufficient funds.",
        ),
        ("4000 0000 0000 0069", "expired_card", "expired_card", "Your card has expired."),
        (
            "4000 0000 0000 0127",
            "incorrect_cvc",
            "incorrect_cvc",
            "Your card's security code is incorrect.",
        ),
    ],
)
def test_a_declined_card_can_be_retried(
    stripe_api, stripe_sandbox, clinic, session, webhook_receiver, card, code, decline_code, message
):
    declined = submit(session.url, card=card)
    after_decline = retrieve(stripe_api, clinic, session.id)
    retried = submit(session.url)

    assert declined.status_code == 402
    assert f'<p class="alert" role="alert">{message}</p>' in unescape(declined.text)
    assert 'value="patient@example.com"' in declined.text  # kept for the retry
    assert (after_decline.status, after_decline.payment_status) == ("open", "unpaid")
    payment_intent = after_decline.payment_intent
    assert payment_intent.status == "requires_payment_method"
    error = payment_intent.last_payment_error
    assert (error.type, error.code, error.decline_code, error.message) == (
        "card_error",
        code,
        decline_code,
        message,
    )
    assert payment_intent.latest_charge.status == "failed"
    assert retried.status_code == 303
    assert retrieve(stripe_api, clinic, session.id).payment_intent.id == payment_intent.id

    stripe_sandbox.wait_for_webhooks()
    events = [verified(d) for d in webhook_receiver.wait_for(6)]
    assert [e.type for e in events] == [
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    failed = next(e for e in events if e.type == "payment_intent.payment_failed")
    assert failed.account == clinic
    assert failed.data.object.last_payment_error.decline_code == decline_code
    assert failed.data.object.metadata["payment_request_id"] == "12"


def test_events_of_a_successful_payment_in_order(stripe_sandbox, clinic, session, webhook_receiver):
    submit(session.url)
    stripe_sandbox.wait_for_webhooks()

    events = [verified(d) for d in webhook_receiver.wait_for(4)]

    assert [e.type for e in events] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    assert all(e.account == clinic and e.livemode is False for e in events)
    completed = events[-1].data.object
    assert (completed.id, completed.status, completed.payment_status) == (
        session.id,
        "complete",
        "paid",
    )
    assert completed.metadata["payment_request_id"] == "12"
    assert completed.client_reference_id == "payreq_12"
    assert completed.payment_intent == events[2].data.object.id
    assert events[2].data.object.latest_charge == events[1].data.object.id
    assert events[-1].request.id is None  # the person paid; no API call did


def challenge_url(answer: requests.Response) -> str:
    assert answer.status_code == 303
    return answer.headers["Location"]


def test_3d_secure_completed(stripe_api, stripe_sandbox, clinic, session):
    started = submit(session.url, card="4000 0025 0000 3155")
    url = challenge_url(started)
    waiting = retrieve(stripe_api, clinic, session.id).payment_intent
    page = requests.get(url, timeout=5)
    done = requests.post(url, data={"outcome": "complete"}, allow_redirects=False, timeout=5)
    found = retrieve(stripe_api, clinic, session.id)

    assert url.startswith(f"{stripe_sandbox.base}/c/pay/{session.id}/authenticate/")
    assert waiting.status == "requires_action"
    assert waiting.next_action.redirect_to_url.url == url
    assert ">Complete authentication</button>" in page.text
    assert ">Fail authentication</button>" in page.text
    assert done.status_code == 303 and session.id in done.headers["Location"]
    assert (found.status, found.payment_status) == ("complete", "paid")
    three_d_secure = found.payment_intent.latest_charge.payment_method_details.card.three_d_secure
    assert three_d_secure.result == "authenticated"
    assert requests.get(url, allow_redirects=False, timeout=5).status_code == 303


def test_3d_secure_failed(stripe_api, stripe_sandbox, clinic, session):
    url = challenge_url(submit(session.url, card="4000 0025 0000 3155"))

    failed = requests.post(url, data={"outcome": "fail"}, allow_redirects=False, timeout=5)
    found = retrieve(stripe_api, clinic, session.id)

    message = "We are unable to authenticate your payment method."
    assert failed.status_code == 402 and message in failed.text and "<form" in failed.text
    assert found.status == "open"
    error = found.payment_intent.last_payment_error
    assert (error.code, error.decline_code) == ("card_declined", "authentication_required")
    assert error.message.startswith(message)
    assert found.payment_intent.latest_charge is None
    [event] = stripe_sandbox.events(type="payment_intent.payment_failed")
    assert event["data"]["object"]["last_payment_error"]["decline_code"] == (
        "authentication_required"
    )
    assert submit(session.url).status_code == 303


def test_the_control_api_pays_without_a_browser(stripe_sandbox, session):
    declined = stripe_sandbox.pay(session.id, card="4000000000009995")
    challenged = stripe_sandbox.pay(session.id, card="4000002500003155")
    failed = stripe_sandbox.pay(session.id, card="4000002500003155", authenticate=False)
    paid = stripe_sandbox.pay(session.id, card="4000002500003155", authenticate=True)
    too_late = stripe_sandbox.answer(
        "POST", f"/checkout/sessions/{session.id}/pay", json={"card": "4242424242424242"}
    )
    invalid = stripe_sandbox.answer(
        "POST", f"/checkout/sessions/{session.id}/pay", json={"card": "1234"}
    )

    assert declined["outcome"] == "declined"
    assert declined["error"]["decline_code"] == "insufficient_funds"
    assert challenged["outcome"] == "requires_action"
    assert "/authenticate/" in challenged["next_url"]
    assert failed["outcome"] == "declined"
    assert failed["error"]["decline_code"] == "authentication_required"
    assert paid["outcome"] == "succeeded"
    assert paid["session"]["status"] == "complete"
    assert paid["next_url"].endswith(f"session_id={session.id}")
    assert too_late.status_code == 409 and too_late.json()["session"]["status"] == "complete"
    assert invalid.status_code == 400
    assert invalid.json()["problems"] == {"cardnumber": "Your card number is incomplete."}


def test_a_delayed_payment_that_succeeds(stripe_api, stripe_sandbox, clinic, session):
    form = {"email": "pat@example.com", "name": "Pat Citizen", "delayed": "yes"}
    submitted = requests.post(session.url, data=form, allow_redirects=False, timeout=5)
    processing = retrieve(stripe_api, clinic, session.id)

    settled = stripe_sandbox.settle(session.id, "succeeded")
    found = retrieve(stripe_api, clinic, session.id)

    assert submitted.status_code == 303
    assert (processing.status, processing.payment_status) == ("complete", "unpaid")
    assert processing.payment_intent.status == "processing"
    assert processing.payment_intent.latest_charge.status == "pending"
    assert settled["outcome"] == "succeeded"
    assert (found.status, found.payment_status) == ("complete", "paid")
    assert found.payment_intent.status == "succeeded"
    charge = found.payment_intent.latest_charge
    assert (charge.status, charge.paid) == ("succeeded", True)
    assert charge.payment_method_details.type == "au_becs_debit"
    types = [e["type"] for e in stripe_sandbox.events(account=clinic)]
    assert types[1:] == [
        "payment_intent.created",
        "charge.pending",
        "payment_intent.processing",
        "checkout.session.completed",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.async_payment_succeeded",
    ]
    completed = stripe_sandbox.events(type="checkout.session.completed")[0]["data"]["object"]
    assert completed["payment_status"] == "unpaid"
    again = stripe_sandbox.answer(
        "POST", f"/checkout/sessions/{session.id}/settle", json={"outcome": "failed"}
    )
    assert again.status_code == 409


def test_a_delayed_payment_that_fails(stripe_api, stripe_sandbox, clinic, session):
    stripe_sandbox.pay(session.id, delayed=True)

    settled = stripe_sandbox.settle(session.id, "failed")
    found = retrieve(stripe_api, clinic, session.id)

    assert settled["outcome"] == "failed"
    assert (found.status, found.payment_status) == ("complete", "unpaid")
    assert found.payment_intent.status == "requires_payment_method"
    assert found.payment_intent.last_payment_error.code == "debit_not_authorized"
    assert found.payment_intent.latest_charge.status == "failed"
    [failed] = stripe_sandbox.events(type="checkout.session.async_payment_failed")
    assert failed["data"]["object"]["payment_status"] == "unpaid"
    assert stripe_sandbox.events(type="checkout.session.async_payment_succeeded") == []
