"""Linking Stripe by clicking, on `make run`: link, edit in Stripe, see it, remove.

The clinic admin goes to Stripe (the stand-in's consent page), picks the clinic's account and
connects it; edits it in the stand-in's dashboard (charges off), and vcpay's page shows the
change once the worker has processed the webhook; then removes the link, which disconnects
the account at Stripe.
"""

import re

import pytest

from sandbox.stripe.control_client import StripeControl
from tests.journeys import new_practice, reload_until, save_screenshot, signed_in

pytestmark = pytest.mark.browser


def shot(product, page, name: str) -> None:
    save_screenshot(page, f"client-payments-{product['shape']}-{name}")


def standin_accounts(product) -> dict[str, dict]:
    listing = StripeControl(product["stripe_url"]).get("accounts")
    return {a["business_profile"]["name"]: a for a in listing}


def test_link_edit_in_stripe_and_remove_by_clicking(journey_product, chromium):
    product = journey_product
    practice = new_practice(product, gateway_on=True)
    admin = signed_in(chromium, product, practice.clinic_admin, "/client-payments/")
    admin.get_by_role("link", name=practice.clinic).first.click()
    shot(product, admin, "1-not-linked")
    admin.get_by_role("button", name="Go to Stripe").click()

    # Stripe's consent page (the stand-in's): choose the clinic's existing account.
    assert admin.url.startswith(product["stripe_url"])
    account_id = standin_accounts(product)[practice.account_name]["id"]
    assert account_id == practice.account_id
    admin.get_by_label(f"{practice.account_name} ({account_id})").check()
    shot(product, admin, "2-stripe-consent")
    admin.get_by_role("button", name="Connect my Stripe account").click()

    admin.wait_for_url(re.compile(r".*/client-payments/clinics/\d+$"))
    page = admin.content()
    assert f"Linked Stripe account {practice.account_name}" in page
    assert account_id in page
    shot(product, admin, "3-linked")

    # Edit in Stripe opens the account's dashboard in a new tab.
    with admin.context.expect_page() as opened:
        admin.get_by_role("link", name="Edit in Stripe").click()
    dashboard = opened.value
    dashboard.wait_for_load_state()
    assert account_id in dashboard.url
    dashboard.get_by_label("Charges enabled").uncheck()
    dashboard.get_by_role("button", name="Save account").click()
    shot(product, dashboard, "4-stripe-dashboard")

    # The worker processes account.updated; the page shows it.
    reload_until(admin, "Patients cannot pay until Stripe enables charges")
    shot(product, admin, "5-charges-disabled")

    admin.get_by_role("link", name="Remove").click()
    shot(product, admin, "6-confirm-remove")
    admin.get_by_role("button", name="Remove Stripe account").click()
    admin.get_by_text(f"Stripe account {account_id} removed").wait_for()
    assert admin.get_by_role("button", name="Go to Stripe").is_visible()
    shot(product, admin, "7-removed")
    assert standin_accounts(product)[practice.account_name]["connected"] is False
