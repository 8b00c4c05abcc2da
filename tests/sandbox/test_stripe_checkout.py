"""Checkout Sessions through the real stripe library: create, retrieve, list, expire, the
parameters Stripe refuses, idempotency, Stripe-Account scoping and expand."""

import time

import pytest
import requests
import stripe

from tests.sandbox.stripe_helpers import (
    CANCEL_URL,
    PLATFORM_KEY,
    SUCCESS_URL,
    at_the_start_of_a_second,
    checkout_params,
    connect,
)


@pytest.fixture
def clinic(stripe_api, stripe_sandbox) -> str:
    return connect(stripe_sandbox, stripe_api)


def create(stripe_api, account: str, **overrides):
    return stripe_api.v1.checkout.sessions.create(
        checkout_params(**overrides), {"stripe_account": account}
    )


def test_a_new_session_is_open_with_a_link_to_the_pay_page(stripe_api, clinic, stripe_url):
    before = int(time.time())
    session = create(stripe_api, clinic, customer_email="pat@example.com", locale="en")

    assert session.id.startswith("cs_test_a1") and len(session.id) == 66
    assert session.object == "checkout.session"
    assert (session.status, session.payment_status) == ("open", "unpaid")
    assert session.url == f"{stripe_url}/c/pay/{session.id}"
    assert (session.amount_total, session.amount_subtotal, session.currency) == (
        8500,
        8500,
        "aud",
    )
    assert session.payment_intent is None and session.customer_details is None
    assert session.customer_email == "pat@example.com" and session.locale == "en"
    assert session.metadata.to_dict() == {"payment_request_id": "12"}
    assert session.client_reference_id == "payreq_12"
    assert (session.success_url, session.cancel_url) == (SUCCESS_URL, CANCEL_URL)
    assert (session.mode, session.ui_mode, session.livemode) == ("payment", "hosted_page", False)
    assert before <= session.created <= int(time.time())
    assert "payment_intent_data" not in session
    assert "line_items" not in session


def test_expires_at_defaults_to_a_day(stripe_api, clinic):
    params = checkout_params()
    del params["expires_at"]

    session = stripe_api.v1.checkout.sessions.create(params, {"stripe_account": clinic})

    assert session.expires_at - session.created == 24 * 60 * 60


def test_retrieve_and_line_items(stripe_api, clinic):
    items = [
        {"quantity": 2, "price_data": {"currency": "aud", "unit_amount": 4000,
                                       "product_data": {"name": "Consultation"}}},
        {"quantity": 1, "price_data": {"currency": "aud", "unit_amount": 500,
                                       "product_data": {"name": "Script fee"}}},
    ]  # fmt: skip
    created = create(stripe_api, clinic, line_items=items)
    options = {"stripe_account": clinic}

    found = stripe_api.v1.checkout.sessions.retrieve(created.id, options=options)
    with_items = stripe_api.v1.checkout.sessions.retrieve(
        created.id, {"expand": ["line_items"]}, options
    )
    listed = stripe_api.v1.checkout.sessions.line_items.list(created.id, options=options)

    assert found.to_dict() == created.to_dict()
    assert found.amount_total == 8500
    assert [(i.description, i.quantity, i.amount_total) for i in with_items.line_items.data] == [
        ("Consultation", 2, 8000),
        ("Script fee", 1, 500),
    ]
    assert [i.id for i in listed.data] == [i.id for i in with_items.line_items.data]
    assert listed.data[0].price.unit_amount == 4000


def test_list_newest_first_with_filters(stripe_api, clinic, stripe_sandbox):
    first = create(stripe_api, clinic)
    second = create(stripe_api, clinic)
    paid = create(stripe_api, clinic)
    stripe_sandbox.pay(paid.id, email="pat@example.com")
    options = {"stripe_account": clinic}
    payment_intent = stripe_api.v1.checkout.sessions.retrieve(paid.id, options=options)

    def ids(params):
        return [s.id for s in stripe_api.v1.checkout.sessions.list(params, options).data]

    assert ids({}) == [paid.id, second.id, first.id]
    assert ids({"limit": 1}) == [paid.id]
    assert ids({"status": "open"}) == [second.id, first.id]
    assert ids({"status": "complete"}) == [paid.id]
    assert ids({"payment_intent": payment_intent.payment_intent}) == [paid.id]
    assert ids({"customer_details": {"email": "pat@example.com"}}) == [paid.id]
    assert ids({"customer_details": {"email": "someone@example.com"}}) == []
    every = stripe_api.v1.checkout.sessions.list({"limit": 2}, options).auto_paging_iter()
    assert [s.id for s in every] == [paid.id, second.id, first.id]


def test_expire_an_open_session(stripe_api, clinic, stripe_sandbox):
    session = create(stripe_api, clinic)
    options = {"stripe_account": clinic}

    expired = stripe_api.v1.checkout.sessions.expire(session.id, options=options)
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_api.v1.checkout.sessions.expire(session.id, options=options)

    assert (expired.status, expired.url, expired.payment_status) == ("expired", None, "unpaid")
    assert again.value.http_status == 400
    assert again.value.user_message == (
        'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
        'Session has a status of "expired".'
    )
    [event] = stripe_sandbox.events(type="checkout.session.expired")
    assert event["account"] == clinic
    assert event["data"]["object"]["id"] == session.id
    assert event["request"]["id"] is not None


def test_expire_now_does_what_the_clock_does(stripe_api, clinic, stripe_sandbox):
    session = create(stripe_api, clinic)
    stripe_sandbox.pay(session.id, card="4000000000000002")  # a declined attempt

    expired = stripe_sandbox.expire_now(session.id)
    refused = stripe_sandbox.answer("POST", f"/checkout/sessions/{session.id}/expire-now")
    found = stripe_api.v1.checkout.sessions.retrieve(session.id, options={"stripe_account": clinic})
    payment_intent = stripe_api.v1.payment_intents.retrieve(
        found.payment_intent, options={"stripe_account": clinic}
    )

    assert expired["status"] == "expired" and found.status == "expired"
    assert refused.status_code == 409
    assert (payment_intent.status, payment_intent.cancellation_reason) == (
        "canceled",
        "abandoned",
    )
    types = [e["type"] for e in stripe_sandbox.events(account=clinic)]
    assert types[-2:] == ["payment_intent.canceled", "checkout.session.expired"]
    [event] = stripe_sandbox.events(type="checkout.session.expired")
    assert event["request"] == {"id": None, "idempotency_key": None}


def test_the_control_api_lists_every_accounts_sessions(stripe_api, stripe_sandbox, clinic):
    other = connect(stripe_sandbox, stripe_api)
    first = create(stripe_api, clinic)
    second = create(stripe_api, other)
    stripe_api.v1.checkout.sessions.expire(second.id, options={"stripe_account": other})

    every = stripe_sandbox.get("/checkout/sessions")
    expired = stripe_sandbox.get("/checkout/sessions", status="expired")
    of_clinic = stripe_sandbox.get("/checkout/sessions", account=clinic)

    assert [(s["id"], s["account"]) for s in every] == [(first.id, clinic), (second.id, other)]
    assert [s["id"] for s in expired] == [second.id]
    assert [s["id"] for s in of_clinic] == [first.id]


def test_idempotent_double_create_gives_one_session(stripe_api, clinic, stripe_sandbox):
    options = {"stripe_account": clinic, "idempotency_key": "vcpay-payreq-12-checkout"}
    params = checkout_params()

    first = stripe_api.v1.checkout.sessions.create(params, options)
    again = stripe_api.v1.checkout.sessions.create(params, options)
    with pytest.raises(stripe.IdempotencyError):
        stripe_api.v1.checkout.sessions.create({**params, "client_reference_id": "x"}, options)

    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert [s["id"] for s in stripe_sandbox.get("/checkout/sessions")] == [first.id]


def test_sessions_live_in_their_account(stripe_api, stripe_sandbox, clinic):
    other = connect(stripe_sandbox, stripe_api)
    session = create(stripe_api, clinic)

    with pytest.raises(stripe.InvalidRequestError) as elsewhere:
        stripe_api.v1.checkout.sessions.retrieve(session.id, options={"stripe_account": other})
    with pytest.raises(stripe.InvalidRequestError) as platform:
        stripe_api.v1.checkout.sessions.retrieve(session.id)
    with pytest.raises(stripe.InvalidRequestError) as expire_elsewhere:
        stripe_api.v1.checkout.sessions.expire(session.id, options={"stripe_account": other})
    with pytest.raises(stripe.InvalidRequestError) as without_account:
        stripe_api.v1.checkout.sessions.create(checkout_params())
    other_list = stripe_api.v1.checkout.sessions.list(options={"stripe_account": other})

    assert (elsewhere.value.http_status, elsewhere.value.code) == (404, "resource_missing")
    assert elsewhere.value.user_message == f"No such checkout.session: '{session.id}'"
    assert platform.value.http_status == 404
    assert expire_elsewhere.value.http_status == 404
    assert without_account.value.http_status == 400
    assert "Stripe-Account" in without_account.value.user_message
    assert other_list.data == []


def test_an_account_without_charges_cannot_take_payments(stripe_api, stripe_sandbox, clinic):
    stripe_sandbox.post(f"/accounts/{clinic}", {"charges_enabled": False})

    with pytest.raises(stripe.InvalidRequestError) as refused:
        create(stripe_api, clinic)

    assert refused.value.code == "account_invalid"
    assert "charges_enabled is false" in refused.value.user_message


def item(**price_data):
    data = {"currency": "aud", "unit_amount": 8500, "product_data": {"name": "Consultation"}}
    data.update(price_data)
    return [{"quantity": 1, "price_data": {k: v for k, v in data.items() if v is not None}}]


NOW = int(time.time())
LINE = "line_items[0]"
PRICE = f"{LINE}[price_data]"
REFUSALS = [
    ({"mode": None}, "mode", "Missing required param: mode."),
    ({"mode": "fast"}, "mode", "Invalid mode: must be one of payment, setup, subscription"),
    (  # Checkout speaks no Serbian
        {"locale": "sr"},
        "locale",
        "Invalid locale: must be one of auto, bg, cs, da, de, el, en, en-GB, es, es-419, et, fi, "
        "fil, fr, fr-CA, hr, hu, id, it, ja, ko, lt, lv, ms, mt, nb, nl, pl, pt, pt-BR, ro, ru, "
        "sk, sl, sv, th, tr, vi, zh, zh-HK, zh-TW",
    ),
    (
        {"mode": "subscription"},
        "mode",
        "The Stripe stand-in supports Checkout in payment and setup modes, not subscription.",
    ),
    ({"line_items": None}, "line_items", "line_items is required in payment mode."),
    (
        {"line_items": item() * 101},
        "line_items",
        "You may only specify up to 100 line items.",
    ),
    (
        {"line_items": [{"price_data": item()[0]["price_data"]}]},
        f"{LINE}[quantity]",
        f"Missing required param: {LINE}[quantity].",
    ),
    (
        {"line_items": [{**item()[0], "quantity": 0}]},
        f"{LINE}[quantity]",
        "This value must be greater than or equal to 1.",
    ),
    (
        {"line_items": [{**item()[0], "quantity": "two"}]},
        f"{LINE}[quantity]",
        "Invalid integer: two",
    ),
    ({"line_items": item(currency=None)}, f"{PRICE}[currency]", None),
    ({"line_items": item(currency="AUD")}, f"{PRICE}[currency]", None),
    ({"line_items": item(product_data=None)}, f"{PRICE}[product_data]", None),
    (
        {"line_items": item(product_data={"name": " "})},
        f"{PRICE}[product_data][name]",
        f"Missing required param: {PRICE}[product_data][name].",
    ),
    (
        {"line_items": item(unit_amount=None)},
        f"{PRICE}[unit_amount]",
        f"Missing required param: {PRICE}[unit_amount].",
    ),
    (
        {"line_items": item(unit_amount=-1)},
        f"{PRICE}[unit_amount]",
        "This value must be greater than or equal to 0.",
    ),
    ({"line_items": item(unit_amount="85.00")}, f"{PRICE}[unit_amount]", "Invalid integer: 85.00"),
    (
        {"expires_at": NOW + 10 * 60},
        "expires_at",
        "The `expires_at` timestamp must be at least 30 minutes after the Checkout Session is "
        "created.",
    ),
    (
        {"expires_at": NOW + 25 * 60 * 60},
        "expires_at",
        "The `expires_at` timestamp must be at most 24 hours after the Checkout Session is "
        "created.",
    ),
    ({"success_url": None}, "success_url", "Missing required param: success_url."),
    ({"success_url": "/done"}, "success_url", "Not a valid URL"),
    (
        {"ui_mode": "embedded_page"},
        "ui_mode",
        "The Stripe stand-in supports only hosted Checkout (ui_mode=hosted_page), not "
        "embedded_page: it has no Stripe.js.",
    ),
    (
        {"ui_mode": "hosted"},
        "ui_mode",
        "Invalid ui_mode: must be one of hosted_page, embedded_page, elements, form",
    ),
    ({"colour": "blue"}, "colour", "Received unknown parameter: colour"),
    (
        {"line_items": [{**item()[0], "colour": "blue"}]},
        f"{LINE}[colour]",
        f"Received unknown parameter: {LINE}[colour]",
    ),
    (
        {"payment_intent_data": {"metadata": {"a": "1"}, "colour": "blue"}},
        "payment_intent_data[colour]",
        "Received unknown parameter: payment_intent_data[colour]",
    ),
    ({"customer_email": "not-an-email"}, "customer_email", "Invalid email address: not-an-email"),
]


@pytest.mark.parametrize(("change", "param", "message"), REFUSALS)
def test_invalid_sessions_are_refused_as_stripe_refuses_them(
    stripe_api, clinic, change, param, message
):
    params = {k: v for k, v in checkout_params(**change).items() if v is not None}

    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_api.v1.checkout.sessions.create(params, {"stripe_account": clinic})

    error = refused.value.json_body["error"]
    assert refused.value.http_status == 400
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    if message:
        assert error["message"] == message
    else:
        assert error["message"].startswith(("Missing required param", "Invalid currency: "))


@pytest.mark.parametrize(
    ("unit_amount", "code", "message"),
    [
        (49, "amount_too_small", "Amount must be at least $0.50 aud"),
        (100_000_000, "amount_too_large", "Amount must be no more than $999,999.99"),
    ],
)
def test_the_total_must_be_chargeable(stripe_api, clinic, unit_amount, code, message):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        create(stripe_api, clinic, line_items=item(unit_amount=unit_amount))

    assert refused.value.code == code
    assert refused.value.user_message == message


def test_the_limits_themselves_are_allowed(stripe_api, clinic):
    smallest = create(stripe_api, clinic, line_items=item(unit_amount=50))
    largest = create(stripe_api, clinic, line_items=item(unit_amount=99_999_999))
    soonest = create(stripe_api, clinic, expires_at=at_the_start_of_a_second() + 30 * 60)

    assert (smallest.amount_total, largest.amount_total) == (50, 99_999_999)
    assert soonest.status == "open"


def test_expand_payment_intent_and_its_latest_charge(stripe_api, clinic, stripe_sandbox):
    session = create(stripe_api, clinic, customer_email="pat@example.com")
    stripe_sandbox.pay(session.id, card="5555 5555 5555 4444", name="Pat Citizen")
    options = {"stripe_account": clinic}

    found = stripe_api.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["payment_intent.latest_charge"]}, options
    )
    payment_intent = stripe_api.v1.payment_intents.retrieve(
        found.payment_intent.id, {"expand": ["latest_charge"]}, options
    )
    listed = stripe_api.v1.checkout.sessions.list({"expand": ["data.payment_intent"]}, options)
    with pytest.raises(stripe.InvalidRequestError) as cannot:
        stripe_api.v1.checkout.sessions.retrieve(session.id, {"expand": ["metadata"]}, options)

    charge = found.payment_intent.latest_charge
    assert charge.object == "charge" and charge.id.startswith("ch_")
    card = charge.payment_method_details.card
    assert (card.brand, card.last4, card.funding, card.country) == (
        "mastercard",
        "4444",
        "credit",
        "US",
    )
    assert len(charge.receipt_number) == 9 and charge.receipt_number[4] == "-"
    assert payment_intent.latest_charge.id == charge.id
    assert listed.data[0].payment_intent.id == found.payment_intent.id
    assert cannot.value.user_message == "This property cannot be expanded (metadata)."


def test_the_stand_in_answers_plain_http_too(stripe_url, clinic):
    """As curl would send it: form fields with bracketed keys, Basic auth."""
    form = {
        "mode": "payment",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "aud",
        "line_items[0][price_data][unit_amount]": "8500",
        "line_items[0][price_data][product_data][name]": "Consultation",
        "success_url": "http://127.0.0.1:9/done",
    }
    answer = requests.post(
        f"{stripe_url}/v1/checkout/sessions",
        data=form,
        auth=(PLATFORM_KEY, ""),
        headers={"Stripe-Account": clinic},
        timeout=5,
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["amount_total"] == 8500


@pytest.mark.parametrize(
    ("locale", "browser", "lang", "total"),
    [
        ("hr", "en", "hr", "85,00\xa0AUD"),
        ("auto", "hr-HR,hr", "hr", "85,00\xa0AUD"),
        (None, "en-AU", "en", "A$85.00"),
    ],
)
def test_the_pay_page_speaks_the_sessions_language(
    stripe_api, clinic, locale, browser, lang, total
):
    session = create(stripe_api, clinic, locale=locale)
    page = requests.get(session.url, headers={"Accept-Language": browser}, timeout=5).text
    assert f'<html lang="{lang}">' in page
    assert total in page
