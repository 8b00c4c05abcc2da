"""Stripe's payment events. Each handler asks Stripe for the session as it is now, or only
moves forward (refunds only grow), so duplicates and any order leave the same result."""

from vcpay.integrations.stripe_gateway import StripeGateway
from vcpay.payments import services
from vcpay.webhooks.handlers import handles
from vcpay.webhooks.models import StripeEvent


@handles(
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
)
def checkout_session_changed(event: StripeEvent) -> None:
    request = services.request_for_session(event.data_object["id"])
    if request is None:
        return  # not one of vcpay's (another platform's session on the same account)
    if event.type == "checkout.session.async_payment_failed":
        services.record_async_failure(request)
        return
    session = StripeGateway.for_app().retrieve_checkout_session(
        request.stripe_account_id, request.checkout_session_id
    )
    services.apply_checkout(request, session)


@handles("payment_intent.payment_failed")
def payment_attempt_failed(event: StripeEvent) -> None:
    intent = event.data_object
    key = (intent.get("metadata") or {}).get("payment_request")
    request = services.request_for_intent(intent["id"], key)
    if request is None:
        return
    error = intent.get("last_payment_error") or {}
    services.record_decline(request, error.get("message") or "")


@handles("charge.refunded")
def charge_refunded(event: StripeEvent) -> None:
    charge = event.data_object
    key = (charge.get("metadata") or {}).get("payment_request")
    request = services.request_for_intent(charge.get("payment_intent") or "", key)
    if request is not None:
        services.record_refund(request, int(charge.get("amount_refunded") or 0))
