"""``/v1/payment_methods`` and ``/v1/setup_intents`` on the connected account named by
``Stripe-Account``: saved cards read, attached, detached and listed, and the SetupIntents
that saved them.

Cards come from the hosted pages (the stand-in has no Stripe.js to make them from a number).
A card detached from its Customer, or used for a payment without one, cannot be used or
attached again, as on Stripe.
"""

from typing import Any

from flask import Blueprint, Response, jsonify
from stripe.params import (
    PaymentMethodAttachParams,
    PaymentMethodDetachParams,
    PaymentMethodListParams,
    PaymentMethodRetrieveParams,
    SetupIntentCancelParams,
    SetupIntentCreateParams,
    SetupIntentListParams,
    SetupIntentRetrieveParams,
)

from sandbox.stripe.api import created_matches
from sandbox.stripe.checkout_params import string_map, text
from sandbox.stripe.customers import customer_in, method_type, payment_methods_of
from sandbox.stripe.errors import InvalidParameter, InvalidRequest, missing, no_such
from sandbox.stripe.events import previous_attributes
from sandbox.stripe.expand import expanded
from sandbox.stripe.gateway import api_params, current_account
from sandbox.stripe.lists import list_object
from sandbox.stripe.params import names, refuse_unknown
from sandbox.stripe.runtime import StripeStandin, emit_event, standin
from sandbox.stripe.saved_cards import SETUP_INTENT, setup_intent_object

payment_methods_api = Blueprint("payment_methods_api", __name__, url_prefix="/v1")

PAYMENT_METHOD = "payment_method"
SETUP_INTENT_TAKES = frozenset({"customer", "description", "metadata", "usage", "expand"})
SPENT = "standin.spent_payment_method"  # beside a card that may not be used again
NOT_AGAIN = (
    "The provided PaymentMethod was previously used with a PaymentIntent without Customer "
    "attachment, shared with a connected account without Customer attachment, or was "
    "detached from a Customer. It may not be used again. To use a PaymentMethod multiple "
    "times, you must attach it to a Customer first."
)


def payment_method_in(
    running: StripeStandin, account: str | None, method_id: str, param: str | None = None
) -> dict[str, Any]:
    found = running.state.get_object(account, method_id)
    if found is None or found.get("object") != PAYMENT_METHOD:
        raise no_such(PAYMENT_METHOD, method_id, param=param)
    return found


def is_spent(running: StripeStandin, account: str | None, method: dict[str, Any]) -> bool:
    if method["customer"] is not None:
        return False
    if running.state.get_object(account, f"{method['id']}/spent") is not None:
        return True
    return any(
        charge["payment_method"] == method["id"] and charge["customer"] is None
        for charge in running.state.objects_of(account, "charge")
    )


def usable_method(
    running: StripeStandin, account: str | None, method_id: Any, customer: str | None
) -> dict[str, Any]:
    """The card a PaymentIntent names, if it may be charged for this customer."""
    method = payment_method_in(running, account, str(method_id), param="payment_method")
    if method["type"] != "card":
        raise InvalidParameter(
            "The Stripe stand-in charges saved cards only.", param="payment_method"
        )
    if is_spent(running, account, method):
        raise InvalidRequest(NOT_AGAIN, param="payment_method")
    if method["customer"] is not None and customer is None:
        raise InvalidParameter(
            f"The provided PaymentMethod is attached to a Customer ({method['customer']}). "
            "Pass that customer with it.",
            param="customer",
        )
    if method["customer"] not in (None, customer):
        raise InvalidParameter(
            f"The provided PaymentMethod {method['id']} does not belong to the Customer "
            f"{customer}.",
            param="payment_method",
        )
    return method


def change_method(
    running: StripeStandin, account: str | None, method: dict[str, Any], customer: str | None
) -> dict[str, Any]:
    changed = {**method, "customer": customer}
    after = running.state.put_object(account, changed)
    event = "payment_method.attached" if customer else "payment_method.detached"
    emit_event(event, after, account, previous_attributes(method, after))
    return after


@payment_methods_api.get("/payment_methods/<method_id>")
def retrieve(method_id: str) -> Response:
    params = api_params(*names(PaymentMethodRetrieveParams))
    method = payment_method_in(standin(), current_account(), method_id)
    return jsonify(expanded(standin(), current_account(), method, params))


@payment_methods_api.get("/payment_methods")
def list_methods() -> Response:
    """A customer's payment methods; the stand-in lists only those of a customer."""
    params = api_params(*names(PaymentMethodListParams))
    running, account = standin(), current_account()
    if "customer_account" in params:
        raise InvalidParameter(
            "The Stripe stand-in does not filter by customer_account.", param="customer_account"
        )
    if "customer" not in params:
        raise missing("customer")
    customer = customer_in(running, account, str(params["customer"]))
    found = payment_methods_of(running, account, customer["id"], method_type(params))
    return jsonify(list_object(found, params, "/v1/payment_methods"))


@payment_methods_api.post("/payment_methods/<method_id>/attach")
def attach(method_id: str) -> Response:
    params = api_params(*names(PaymentMethodAttachParams))
    running, account = standin(), current_account()
    if "customer" not in params:
        raise missing("customer")
    with running.state.lock:
        method = payment_method_in(running, account, method_id)
        customer = customer_in(running, account, str(params["customer"]))["id"]
        if method["customer"] == customer:
            return jsonify(method)
        if method["customer"] is not None:
            raise InvalidRequest(
                f"The payment method you provided is already attached to a customer "
                f"({method['customer']}). To attach it to another, detach it first.",
                param="payment_method",
            )
        if is_spent(running, account, method):
            raise InvalidRequest(NOT_AGAIN, param="payment_method")
        return jsonify(change_method(running, account, method, customer))


@payment_methods_api.post("/payment_methods/<method_id>/detach")
def detach(method_id: str) -> Response:
    api_params(*names(PaymentMethodDetachParams))
    running, account = standin(), current_account()
    with running.state.changing():
        method = payment_method_in(running, account, method_id)
        if method["customer"] is None:
            raise InvalidRequest(
                "The payment method you provided is not attached to a customer so detachment "
                "is impossible.",
                param="payment_method",
            )
        running.state.put_object(account, {"id": f"{method_id}/spent", "object": SPENT})
        return jsonify(change_method(running, account, method, None))


def setup_intent_in(running: StripeStandin, account: str | None, setup_intent_id: str) -> dict:
    found = running.state.get_object(account, setup_intent_id)
    if found is None or found.get("object") != SETUP_INTENT:
        raise no_such(SETUP_INTENT, setup_intent_id)
    return found


@payment_methods_api.post("/setup_intents")
def create_setup_intent() -> Response:
    """Made, not confirmed: cards are saved on Checkout's page (the stand-in has no Stripe.js
    to confirm one with)."""
    params = api_params(*names(SetupIntentCreateParams))
    refuse_unknown(params, SetupIntentCreateParams)
    for name in params:
        if name not in SETUP_INTENT_TAKES:
            raise InvalidParameter(
                f"The Stripe stand-in does not support {name} on SetupIntents: cards are saved "
                "with Checkout in setup mode.",
                param=name,
            )
    usage = params.get("usage", "off_session")
    if usage not in ("off_session", "on_session"):
        raise InvalidParameter("Invalid usage: must be one of off_session, on_session", "usage")
    running, account = standin(), current_account()
    customer = params.get("customer")
    if customer is not None:
        customer = customer_in(running, account, text(customer, "customer"))["id"]
    description = params.get("description")
    data = {
        "description": None if description is None else text(description, "description"),
        "metadata": string_map(params.get("metadata"), "metadata"),
    }
    setup_intent = {**setup_intent_object(running, customer, data), "usage": usage}
    kept = running.state.put_object(account, setup_intent)
    emit_event("setup_intent.created", kept, account)
    return jsonify(expanded(running, account, kept, params))


@payment_methods_api.post("/setup_intents/<setup_intent_id>/cancel")
def cancel_setup_intent(setup_intent_id: str) -> Response:
    params = api_params(*names(SetupIntentCancelParams))
    reason = params.get("cancellation_reason")
    if reason not in (None, "abandoned", "duplicate", "requested_by_customer"):
        raise InvalidParameter(
            "Invalid cancellation_reason: must be one of abandoned, duplicate, "
            "requested_by_customer",
            param="cancellation_reason",
        )
    running, account = standin(), current_account()
    with running.state.lock:
        setup_intent = setup_intent_in(running, account, setup_intent_id)
        if setup_intent["status"] in ("succeeded", "canceled"):
            raise InvalidRequest(
                "You cannot cancel this SetupIntent because it has a status of "
                f"{setup_intent['status']}.",
                code="setup_intent_unexpected_state",
            )
        setup_intent.update(status="canceled", cancellation_reason=reason, next_action=None)
        running.state.put_object(account, setup_intent)
        emit_event("setup_intent.canceled", setup_intent, account)
    return jsonify(expanded(running, account, setup_intent, params))


@payment_methods_api.get("/setup_intents/<setup_intent_id>")
def retrieve_setup_intent(setup_intent_id: str) -> Response:
    params = api_params(*names(SetupIntentRetrieveParams))
    found = setup_intent_in(standin(), current_account(), setup_intent_id)
    return jsonify(expanded(standin(), current_account(), found, params))


@payment_methods_api.get("/setup_intents")
def list_setup_intents() -> Response:
    params = api_params(*names(SetupIntentListParams))
    for name in {"attach_to_self", "customer_account"} & set(params):
        raise InvalidParameter(f"The Stripe stand-in does not filter by {name}.", param=name)
    found = [
        s
        for s in standin().state.objects_of(current_account(), SETUP_INTENT)
        if params.get("customer") in (None, s["customer"])
        and params.get("payment_method") in (None, s["payment_method"])
        and created_matches(s, params.get("created"))
    ]
    listing = list_object(found[::-1], params, "/v1/setup_intents")
    return jsonify(expanded(standin(), current_account(), listing, params))
