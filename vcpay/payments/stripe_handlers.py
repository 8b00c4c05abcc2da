"""Stripe's payment events, trusted only for their own account.

An event says which payment it is about through its object's id and metadata; that is a hint
for finding the request, never proof. A request changes only when the event came from the
account the request was made on and its object is the request's own (its Checkout Session,
that session's PaymentIntent, the charge that paid it); what changes is read from Stripe
again for that account, never taken from the event's body. So duplicates, any order, and
events another clinic crafts on its own account all leave the same, true result.

Each handler maps the adapter's typed value to a service call: ``sync_with_stripe`` for the
payment, and for its refunds ``follow_refund`` (one refund) or ``follow_refunds`` (all of the
charge's, after ``charge.refunded``), which match a refund to the request by the payment it
gives back as Stripe says, never by metadata.
"""

import logging

from flask import Flask

from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_events import CHECKOUT_EVENTS, REFUND_EVENTS
from vcpay.integrations.stripe_values import (
    ChargeRefunded,
    CheckoutChanged,
    PaymentFailed,
    PaymentIntentChanged,
    RefundChanged,
)
from vcpay.observability.context import bind
from vcpay.payments import refunds, saved_card_charges, saved_cards, transitions
from vcpay.payments.models import PaymentRequest, SavedCard
from vcpay.webhooks.registry import IgnoreEvent, stripe_handlers

log = logging.getLogger(__name__)


def register_stripe_handlers(app: Flask) -> None:
    handlers = stripe_handlers(app)
    handlers.add_change(checkout_session_changed, *CHECKOUT_EVENTS)
    handlers.add_change(payment_attempt_failed, "payment_intent.payment_failed")
    handlers.add_change(
        payment_intent_changed, "payment_intent.succeeded", "payment_intent.requires_action"
    )
    handlers.add_change(charge_refunded, "charge.refunded")
    handlers.add_change(refund_changed, *REFUND_EVENTS)


def checkout_session_changed(change: CheckoutChanged) -> None:
    request = transitions.request_for_session(change.session_id)
    if request is None and (card := saved_cards.card_for_session(change.session_id)):
        _card_setup_changed(change.account, card)
        return
    _sync(_own_payment(change.account, request))


def _card_setup_changed(account: str | None, card: SavedCard) -> None:
    """A page that saves a card: trusted only from the account the card is saved on."""
    if account != card.account_id:
        log.warning(
            "Stripe event from %s names saved card %s of another account; ignored",
            account or "the platform",
            card.id,
        )
        raise IgnoreEvent(f"Sent by {account or 'the platform'}, not by saved card {card.id}'s.")
    saved_cards.complete(card, StripeApi.for_app())


def payment_attempt_failed(change: PaymentFailed) -> None:
    """A declined card: the request stays open, and both sides hear Stripe's reason."""
    request = transitions.request_for_payment_intent(
        change.payment_intent_id, change.payment_request
    )
    _sync(_own_payment(change.account, request), failed_attempt=change.payment_intent_id)


def charge_refunded(change: ChargeRefunded) -> None:
    request = transitions.request_for_payment_intent(
        change.payment_intent_id, change.payment_request
    )
    request = _own_payment(change.account, request)
    _sync(request, charge=change.charge_id)
    _foreign_ignored(refunds.follow_refunds, request, StripeApi.for_app())


def refund_changed(change: RefundChanged) -> None:
    """A refund made, or changed by Stripe: its row, and the request's refunded amount."""
    request = refunds.request_for_refund(
        change.refund_id, change.payment_intent_id, change.charge_id
    )
    request = _own_payment(change.account, request)
    _foreign_ignored(refunds.follow_refund, request, change.refund_id, StripeApi.for_app())


def _own_payment(account: str | None, request: PaymentRequest | None) -> PaymentRequest:
    """The request, if the event came from the account it was made on."""
    if request is None:
        raise IgnoreEvent("Not about a payment vcpay requested.")
    bind(payment_request_key=request.request_key, call_id=request.call_id)  # for the logs
    if account != request.stripe_account_id:
        log.warning(
            "Stripe event from %s names payment request %s of another account; ignored",
            account or "the platform",
            request.id,
        )
        raise IgnoreEvent(
            f"Sent by {account or 'the platform'}, not by the account payment request "
            f"{request.id} was made on."
        )
    return request


def _sync(request: PaymentRequest, **named: str) -> None:
    if request.off_session:  # a saved card's charge: its PaymentIntent, read again
        _foreign_ignored(saved_card_charges.ask_stripe, request, StripeApi.for_app())
        return
    _foreign_ignored(transitions.sync_with_stripe, request, StripeApi.for_app(), **named)


def payment_intent_changed(change: PaymentIntentChanged) -> None:
    """A saved card's charge succeeded or needs its holder: read it again on its account."""
    request = transitions.request_for_payment_intent(
        change.payment_intent_id, change.payment_request
    )
    request = _own_payment(change.account, request)
    if not request.off_session:
        return  # a Checkout payment: its session's events tell
    _sync(request)


def _foreign_ignored(apply, *args, **named) -> None:
    """Apply Stripe's answer; an object Stripe shows is not the request's is ignored."""
    try:
        apply(*args, **named)
    except transitions.NotTheRequests as foreign:
        raise IgnoreEvent(foreign.reason) from None
