"""Customers on a connected account (``/v1/customers``): who a saved card belongs to.

The product creates the Customer before it opens a Checkout Session in setup mode, and
passes it as ``customer``; the card the patient saves there is attached to it. Only the
fields a clinic's patient needs are taken (email, name, phone, description, metadata); the
rest of Stripe's Customer (invoicing, tax, balances) is refused by name.
"""

import time
from typing import Any

from flask import Blueprint, Response, jsonify
from stripe.params import (
    CustomerCreateParams,
    CustomerDeleteParams,
    CustomerListParams,
    CustomerListPaymentMethodsParams,
    CustomerRetrieveParams,
    CustomerRetrievePaymentMethodParams,
    CustomerUpdateParams,
)

from sandbox.stripe.api import created_matches
from sandbox.stripe.cards import EMAIL
from sandbox.stripe.checkout_params import string_map, text
from sandbox.stripe.errors import InvalidParameter, no_such
from sandbox.stripe.events import previous_attributes
from sandbox.stripe.expand import expanded
from sandbox.stripe.gateway import api_params, current_account
from sandbox.stripe.lists import list_object
from sandbox.stripe.params import names, refuse_unknown
from sandbox.stripe.runtime import StripeStandin, emit_event, standin
from sandbox.stripe.store import new_id

customers_api = Blueprint("customers_api", __name__, url_prefix="/v1/customers")

CUSTOMER = "customer"
DELETED = "standin.deleted_customer"  # kept in a deleted customer's place
TEXT_FIELDS = ("email", "name", "phone", "description")
SUPPORTED = frozenset({*TEXT_FIELDS, "metadata", "expand"})


def customer_object(fields: dict[str, Any]) -> dict[str, Any]:
    """A Customer in Stripe's shape; invoicing, tax and shipping are unused (null)."""
    return {
        "id": new_id("cus_", 14),
        "object": CUSTOMER,
        "address": None,
        "balance": 0,
        "created": int(time.time()),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": fields.get("description"),
        "discount": None,
        "email": fields.get("email"),
        "invoice_prefix": new_id("", 8).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": fields.get("metadata", {}),
        "name": fields.get("name"),
        "next_invoice_sequence": 1,
        "phone": fields.get("phone"),
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def read_fields(params: dict[str, Any], params_class: type) -> dict[str, Any]:
    refuse_unknown(params, params_class)
    for name in params:
        if name not in SUPPORTED:
            raise InvalidParameter(
                f"The Stripe stand-in does not support {name} on customers.", param=name
            )
    fields: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        if name in params:
            fields[name] = text(params[name], name) or None
    email = fields.get("email")
    if email is not None and not EMAIL.match(email):
        raise InvalidParameter(
            f"Invalid email address: {email}", param="email", code="email_invalid"
        )
    if "metadata" in params:
        fields["metadata"] = string_map(params["metadata"], "metadata")
    return fields


def create_customer(
    running: StripeStandin, account: str | None, fields: dict[str, Any]
) -> dict[str, Any]:
    customer = running.state.put_object(account, customer_object(fields))
    running.events.emit("customer.created", customer, account)
    return customer


def customer_in(
    running: StripeStandin, account: str | None, customer_id: str, param: str = "customer"
) -> dict[str, Any]:
    found = running.state.get_object(account, customer_id)
    if found is None or found.get("object") != CUSTOMER:
        raise no_such(CUSTOMER, customer_id, param=param)
    return found


def payment_methods_of(
    running: StripeStandin, account: str | None, customer_id: str, kind: str | None
) -> list[dict[str, Any]]:
    """The customer's attached payment methods, newest first."""
    found = running.state.objects_of(account, "payment_method")
    return [
        method
        for method in found[::-1]
        if method["customer"] == customer_id and kind in (None, method["type"])
    ]


def method_type(params: dict[str, Any]) -> str | None:
    if "allow_redisplay" in params:
        raise InvalidParameter(
            "The Stripe stand-in does not filter payment methods by allow_redisplay.",
            param="allow_redisplay",
        )
    kind = params.get("type")
    return None if kind is None else text(kind, "type")


def shown(obj: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return expanded(standin(), current_account(), obj, params)


@customers_api.post("")
def create() -> Response:
    params = api_params(*names(CustomerCreateParams))
    fields = read_fields(params, CustomerCreateParams)
    return jsonify(shown(create_customer(standin(), current_account(), fields), params))


@customers_api.get("/<customer_id>")
def retrieve(customer_id: str) -> Response:
    params = api_params(*names(CustomerRetrieveParams))
    found = standin().state.get_object(current_account(), customer_id)
    if found is not None and found.get("object") == DELETED:
        return jsonify(deleted(customer_id))  # Stripe still answers for a deleted customer
    return jsonify(shown(customer_in(standin(), current_account(), customer_id), params))


@customers_api.post("/<customer_id>")
def update(customer_id: str) -> Response:
    params = api_params(*names(CustomerUpdateParams))
    fields = read_fields(params, CustomerUpdateParams)
    running, account = standin(), current_account()
    with running.state.changing():
        before = customer_in(running, account, customer_id)
        given = params.get("metadata")
        if given is not None:  # keys posted empty are unset, and an empty map unsets all
            merged = {**before["metadata"], **given} if isinstance(given, dict) else {}
            fields["metadata"] = {k: v for k, v in merged.items() if v != ""}
        after = running.state.update_object(account, customer_id, lambda c: c.update(fields))
    if after != before:
        emit_event("customer.updated", after, account, previous_attributes(before, after))
    return jsonify(shown(after, params))


@customers_api.delete("/<customer_id>")
def delete(customer_id: str) -> Response:
    """Deleting a customer detaches its payment methods, as on Stripe."""
    api_params(*names(CustomerDeleteParams))
    running, account = standin(), current_account()
    with running.state.changing():
        customer = customer_in(running, account, customer_id)
        for method in payment_methods_of(running, account, customer_id, None):
            running.state.update_object(account, method["id"], lambda m: m.update(customer=None))
        running.state.objects.put(account, {"id": customer_id, "object": DELETED})
    emit_event("customer.deleted", customer, account)
    return jsonify(deleted(customer_id))


def deleted(customer_id: str) -> dict[str, Any]:
    return {"id": customer_id, "object": CUSTOMER, "deleted": True}


@customers_api.get("")
def list_customers() -> Response:
    params = api_params(*names(CustomerListParams))
    for name in ("test_clock",):
        if name in params:
            raise InvalidParameter(f"The Stripe stand-in does not filter by {name}.", param=name)
    email = params.get("email")
    found = [
        c
        for c in standin().state.objects_of(current_account(), CUSTOMER)
        if email in (None, c["email"]) and created_matches(c, params.get("created"))
    ]
    return jsonify(shown(list_object(found[::-1], params, "/v1/customers"), params))


@customers_api.get("/<customer_id>/payment_methods")
def customer_payment_methods(customer_id: str) -> Response:
    params = api_params(*names(CustomerListPaymentMethodsParams))
    running, account = standin(), current_account()
    customer_in(running, account, customer_id)
    found = payment_methods_of(running, account, customer_id, method_type(params))
    url = f"/v1/customers/{customer_id}/payment_methods"
    return jsonify(shown(list_object(found, params, url), params))


@customers_api.get("/<customer_id>/payment_methods/<payment_method_id>")
def customer_payment_method(customer_id: str, payment_method_id: str) -> Response:
    params = api_params(*names(CustomerRetrievePaymentMethodParams))
    running, account = standin(), current_account()
    customer_in(running, account, customer_id)
    method = running.state.get_object(account, payment_method_id)
    if method is None or method.get("customer") != customer_id:
        raise no_such("payment_method", payment_method_id, param="payment_method")
    return jsonify(shown(method, params))
