"""A Checkout Session asked for at the edge of Stripe's window (30 minutes to 24 hours from its
creation, measured by Stripe to the second, without leeway) is still made: the adapter keeps
``expires_at`` inside the window Stripe will measure."""

import math
import time

import pytest

from vcpay.integrations.stripe_api import (
    CHECKOUT_CLOCK_ALLOWANCE_SECONDS,
    StripeApi,
    within_checkout_window,
)
from vcpay.integrations.stripe_values import CheckoutRequest

ALLOWANCE = CHECKOUT_CLOCK_ALLOWANCE_SECONDS


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        (1_000_000 + 30 * 60, 1_000_001 + 30 * 60 + ALLOWANCE),  # the edge, a moment ago
        (1_000_000 + 10 * 60, 1_000_001 + 30 * 60 + ALLOWANCE),  # too soon for Stripe
        (1_000_000 + 2 * 3600, 1_000_000 + 2 * 3600),  # well inside: as asked
        (1_000_000 + 24 * 3600, 1_000_000 + 24 * 3600 - ALLOWANCE),  # the far edge
    ],
)
def test_expires_at_is_kept_inside_stripes_window(asked, expected):
    assert within_checkout_window(asked, now=1_000_000.4) == expected


def order(account_id: str, expires_at: int) -> CheckoutRequest:
    return CheckoutRequest(
        account_id=account_id,
        amount=8500,
        currency="aud",
        description="Consultation",
        success_url="http://127.0.0.1:9/done?session_id={CHECKOUT_SESSION_ID}",
        cancel_url="http://127.0.0.1:9/left",
        expires_at=expires_at,
        idempotency_key=f"window-{expires_at}",
        metadata={"payment_request": "window"},
    )


def test_a_session_asked_for_exactly_30_minutes_ago_is_made(app, stripe_control):
    account = stripe_control.connected_account(app.config["STRIPE_CLIENT_ID"])
    stripe_api = StripeApi.for_app()
    # As vcpay computes it, a whole second before the call reaches Stripe.
    asked = math.floor(time.time()) - 1 + 30 * 60

    session = stripe_api.create_checkout_session(order(account, asked))

    [made] = stripe_control.sessions()
    assert made["id"] == session.id
    assert made["expires_at"] - made["created"] >= 30 * 60
    assert made["expires_at"] <= asked + 1 + ALLOWANCE + 2
