"""Stripe's payment events, trusted only for their own account.

An event says which payment it is about through its object's id and metadata; that is a hint
for finding the request, never proof. A request changes only when the event came from the
account the request was made on and its object is the request's own (its Checkout Session,
that session's PaymentIntent, the charge that paid it); what changes is read from Stripe
again for that account, never taken from the event's body. So duplicates, any order, and
events another clinic crafts on its own account all leave the same, true result.
"""

import logging

from flask import Flask

from vcpay.integrations.stripe_gateway import EventObject, StripeGateway, event_object
from vcpay.payments import services
from vcpay.payments.models import PaymentRequest
from vcpay.webhooks.handlers import IgnoreEvent, stripe_handlers
from vcpay.webhooks.models import StripeEvent

log = logging.getLogger(__name__)


def register_stripe_handlers(app: Flask) -> None:
    handlers = stripe_handlers(app)
    handlers.add(
        checkout_session_changed,
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    )
    handlers.add(payment_attempt_failed, "payment_intent.payment_failed")
    handlers.add(charge_refunded, "charge.refunded")


def _object(event: StripeEvent) -> EventObject:
    try:
        return event_object(event.payload)
    except ValueError as error:
        raise IgnoreEvent(str(error)) from None


def _own_payment(event: StripeEvent, request: PaymentRequest | None) -> PaymentRequest:
    """The request, if the event came from the account it was made on."""
    if request is None:
        raise IgnoreEvent("Not about a payment vcpay requested.")
    if event.account != request.stripe_account_id:
        log.warning(
            "Stripe event %s from %s names payment request %s of another account; ignored",
            event.event_id, event.account or "the platform", request.id,
        )  # fmt: skip
        raise IgnoreEvent(
            f"Sent by {event.account or 'the platform'}, not by the account payment request "
            f"{request.id} was made on."
        )
    return request


def checkout_session_changed(event: StripeEvent) -> None:
    session = _object(event)
    request = _own_payment(event, services.request_for_session(session.id))
    _sync(request)


def payment_attempt_failed(event: StripeEvent) -> None:
    """A declined card: the request stays open, and both sides hear Stripe's reason."""
    intent = _object(event)
    request = _own_payment(
        event, services.request_for_payment_intent(intent.id, intent.payment_request)
    )
    _sync(request, failed_attempt=intent.id)


def charge_refunded(event: StripeEvent) -> None:
    charge = _object(event)
    request = _own_payment(
        event, services.request_for_payment_intent(charge.payment_intent_id, charge.payment_request)
    )
    _sync(request, charge=charge.id)


def _sync(request: PaymentRequest, **named: str) -> None:
    try:
        services.sync_with_stripe(request, StripeGateway.for_app(), **named)
    except services.NotTheRequests as foreign:
        raise IgnoreEvent(foreign.reason) from None
