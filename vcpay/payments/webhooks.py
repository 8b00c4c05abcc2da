"""Stripe's payment events. Each handler asks Stripe for the session as it is now, or only
moves forward (refunds only grow), so duplicates and any order leave the same result."""

import json

from flask import current_app

from vcpay.integrations.stripe_gateway import StripeGateway
from vcpay.payments import services
from vcpay.webhooks.handlers import handles
from vcpay.webhooks.models import StripeEvent


def _object(event: StripeEvent) -> dict:
    return json.loads(event.payload)["data"]["object"]


def _gateway() -> StripeGateway:
    return StripeGateway.from_config(current_app.config)


@handles(
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
)
def checkout_session_changed(event: StripeEvent) -> None:
    request = services.request_for_session(_object(event)["id"])
    if request is None:
        return  # not one of vcpay's (another platform's session on the same account)
    if event.type == "checkout.session.async_payment_failed":
        services.record_async_failure(request)
        return
    session = _gateway().retrieve_checkout_session(
        request.stripe_account_id, request.checkout_session_id
    )
    services.apply_checkout(request, session)


@handles("payment_intent.payment_failed")
def payment_attempt_failed(event: StripeEvent) -> None:
    intent = _object(event)
    key = (intent.get("metadata") or {}).get("payment_request")
    request = services.request_for_intent(intent["id"], key)
    if request is None:
        return
    error = intent.get("last_payment_error") or {}
    services.record_decline(request, error.get("message") or "")


@handles("charge.refunded")
def charge_refunded(event: StripeEvent) -> None:
    charge = _object(event)
    key = (charge.get("metadata") or {}).get("payment_request")
    request = services.request_for_intent(charge.get("payment_intent") or "", key)
    if request is not None:
        services.record_refund(request, int(charge.get("amount_refunded") or 0))
