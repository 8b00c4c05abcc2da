"""``/v1/payment_intents``, ``/v1/charges`` and ``/v1/refunds`` on the connected account
named by ``Stripe-Account``: reading PaymentIntents and charges (made by Checkout, or by
``intents_api`` for saved cards), and refunds, which are created here."""

from typing import Any

from flask import Blueprint, Response, jsonify
from stripe.params import (
    ChargeListParams,
    ChargeRetrieveParams,
    PaymentIntentListParams,
    PaymentIntentRetrieveParams,
    RefundCreateParams,
    RefundListParams,
    RefundRetrieveParams,
)

from sandbox.stripe import refunds
from sandbox.stripe.api import created_matches
from sandbox.stripe.errors import InvalidParameter
from sandbox.stripe.expand import expanded
from sandbox.stripe.gateway import api_params, current_account
from sandbox.stripe.lists import list_object
from sandbox.stripe.params import names, refuse_unknown
from sandbox.stripe.payment_objects import payment_object
from sandbox.stripe.runtime import standin

payments_api = Blueprint("payments_api", __name__, url_prefix="/v1")

UNSUPPORTED_REFUND_PARAMS = ("currency", "customer", "instructions_email", "origin")


def shown(obj: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return expanded(standin(), current_account(), obj, params)


def one(object_id: str, kind: str, params_class: type) -> Response:
    params = api_params(*names(params_class))
    found = payment_object(standin(), current_account(), object_id, kind)
    return jsonify(shown(found, params))


def listing(kind: str, url: str, params_class: type, filters: tuple[str, ...] = ()) -> Response:
    params = api_params(*names(params_class))
    for name in set(params) & ({"customer", "customer_account"} - set(filters)):
        raise InvalidParameter(f"The Stripe stand-in does not filter by {name}.", param=name)
    found = [
        obj
        for obj in standin().state.objects_of(current_account(), kind)
        if created_matches(obj, params.get("created"))
        and all(params.get(f) in (None, obj.get(f)) for f in filters)
    ]
    return jsonify(shown(list_object(found[::-1], params, url), params))


@payments_api.get("/payment_intents/<payment_intent_id>")
def retrieve_payment_intent(payment_intent_id: str) -> Response:
    return one(payment_intent_id, "payment_intent", PaymentIntentRetrieveParams)


@payments_api.get("/payment_intents")
def list_payment_intents() -> Response:
    return listing("payment_intent", "/v1/payment_intents", PaymentIntentListParams, ("customer",))


@payments_api.get("/charges/<charge_id>")
def retrieve_charge(charge_id: str) -> Response:
    return one(charge_id, "charge", ChargeRetrieveParams)


@payments_api.get("/charges")
def list_charges() -> Response:
    return listing("charge", "/v1/charges", ChargeListParams, ("payment_intent", "customer"))


@payments_api.post("/refunds")
def create_refund() -> Response:
    params = api_params(*names(RefundCreateParams))
    refuse_unknown(params, RefundCreateParams)
    for name in UNSUPPORTED_REFUND_PARAMS:
        if name in params:
            raise InvalidParameter(f"The Stripe stand-in does not support {name}.", param=name)
    refund = refunds.refund(standin(), current_account(), params)
    return jsonify(shown(refund, params))


@payments_api.get("/refunds/<refund_id>")
def retrieve_refund(refund_id: str) -> Response:
    return one(refund_id, "refund", RefundRetrieveParams)


@payments_api.get("/refunds")
def list_refunds() -> Response:
    return listing("refund", "/v1/refunds", RefundListParams, ("charge", "payment_intent"))
