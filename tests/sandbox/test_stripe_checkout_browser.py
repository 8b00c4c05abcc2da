"""A person pays on the stand-in's Checkout page in Chromium and lands on the success URL."""

import pytest
from werkzeug.wrappers import Request, Response

from sandbox.common.server import serve_in_background, stop_serving
from tests.journeys import save_screenshot
from tests.sandbox.stripe_helpers import checkout_params, connect


@pytest.fixture
def success_page():
    """A tiny stand-in for vcpay's page after payment: it shows the session id it got."""

    def app(environ, start_response):
        session_id = Request(environ).args.get("session_id", "")
        page = f"<!doctype html><title>Paid</title><h1>Thank you</h1><p id=s>{session_id}</p>"
        return Response(page, content_type="text/html")(environ, start_response)

    url, server = serve_in_background(app, name="success-page", poll_interval=0.05)
    yield url
    stop_serving(server)


@pytest.mark.browser
def test_paying_by_card_in_chromium(chromium, stripe_api, stripe_sandbox, success_page):
    account = stripe_sandbox.create_account(business_name="Harbourside GP Clinic")
    clinic = connect(stripe_sandbox, stripe_api, account["id"])
    session = stripe_api.v1.checkout.sessions.create(
        checkout_params(
            customer_email="pat@example.com",
            success_url=f"{success_page}/payments/12/done?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{success_page}/payments/12/cancelled",
        ),
        {"stripe_account": clinic},
    )
    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(session.url)
        assert page.get_by_text("Harbourside GP Clinic").first.is_visible()
        assert page.get_by_role("link", name="Back").get_attribute("href").endswith("/cancelled")
        assert page.get_by_label("Email").input_value() == "pat@example.com"
        page.get_by_label("Card number").fill("4242 4242 4242 4242")
        page.get_by_label("Expiry").fill("12 / 34")
        page.get_by_label("CVC").fill("123")
        page.get_by_label("Name on card").fill("Pat Citizen")
        save_screenshot(page, "stripe-checkout-page")
        page.get_by_role("button", name="Pay A$85.00").click()
        page.wait_for_url(f"{success_page}/payments/12/done?session_id={session.id}")
        shown = page.locator("#s").inner_text()
    finally:
        page.close()

    found = stripe_api.v1.checkout.sessions.retrieve(session.id, options={"stripe_account": clinic})
    assert shown == session.id
    assert (found.status, found.payment_status) == ("complete", "paid")
    assert found.customer_details.name == "Pat Citizen"
