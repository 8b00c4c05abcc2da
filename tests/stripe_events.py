"""Stripe events as Stripe sends them: an envelope, signed over the exact body."""

import json
import secrets
import time
from typing import Any

import stripe

SECRET = "whsec_vcpay_sandbox"


def event(
    event_type: str,
    data_object: dict[str, Any] | None = None,
    account: str | None = "acct_test_clinic",
    event_id: str | None = None,
    created: int | None = None,
    livemode: bool = False,
) -> dict[str, Any]:
    body = {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created or int(time.time()),
        "data": {"object": data_object or {"id": account, "object": "account"}},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    if account is not None:
        body["account"] = account
    return body


def signed(body: dict[str, Any], secret: str = SECRET, timestamp: int | None = None):
    """The raw body and its ``Stripe-Signature`` header, exactly as Stripe makes them."""
    payload = json.dumps(body, indent=2)  # Stripe's bodies are pretty-printed
    header = stripe.WebhookSignature.generate_signature_header(
        payload, secret, timestamp=timestamp or int(time.time())
    )
    return payload.encode(), header


def signed_text(payload: str, secret: str = SECRET) -> tuple[bytes, str]:
    """Any text, signed as Stripe signs a body: for envelopes ``json.dumps`` cannot make."""
    header = stripe.WebhookSignature.generate_signature_header(payload, secret)
    return payload.encode(), header


def post_event(client, body: dict[str, Any], **signing):
    payload, header = signed(body, **signing)
    return client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
