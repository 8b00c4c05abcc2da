"""Checkout Sessions in ``setup`` mode: the hosted page saves a card for later, charging
nothing. The card is attached to the session's ``customer`` (made beforehand with
``/v1/customers``), or to a new Customer with ``customer_creation=always``; otherwise it is
saved attached to no one, as Stripe does.

As Stripe reads it: no ``line_items``, ``payment_intent_data`` or ``submit_type``;
``currency`` is required unless ``allowed_payment_method_types`` is given; ``customer``
excludes ``customer_email`` and ``customer_creation``; ``setup_intent_data`` carries the
SetupIntent's ``description`` and ``metadata``. Saving the card is in ``saved_cards``.
"""

import time
from typing import Any

from sandbox.stripe.checkout import EXTRAS, extras_key, require_charges_enabled, session_object
from sandbox.stripe.checkout_params import (
    STORED_AS_GIVEN,
    client_reference,
    read_customer_email,
    read_expires_at,
    read_locale,
    read_mode,
    read_ui_mode,
    refuse_unsupported,
    string_map,
    text,
    url,
)
from sandbox.stripe.customers import customer_in
from sandbox.stripe.errors import InvalidParameter, InvalidRequest, exclusive, missing
from sandbox.stripe.money import CURRENCIES
from sandbox.stripe.runtime import StripeStandin
from sandbox.stripe.store import new_id

NOT_IN_SETUP_MODE = ("line_items", "payment_intent_data", "submit_type")
SETUP_INTENT_FIELDS = ("description", "metadata")
CUSTOMER_CREATION = ("always", "if_required")


def read_currency(params: dict[str, Any]) -> str | None:
    currency = params.get("currency")
    if currency is None:
        if "allowed_payment_method_types" not in params:
            raise InvalidParameter(
                "You must pass `currency` in `setup` mode when `allowed_payment_method_types` "
                "is not set.",
                param="currency",
                code="parameter_missing",
            )
        return None
    if text(currency, "currency") not in CURRENCIES:
        raise InvalidParameter(
            f"Invalid currency: {currency}. The Stripe stand-in takes {', '.join(CURRENCIES)}.",
            param="currency",
        )
    return currency


def read_setup_intent_data(params: dict[str, Any]) -> dict[str, Any]:
    given = params.get("setup_intent_data") or {}
    if not isinstance(given, dict):
        raise InvalidParameter("Invalid hash", param="setup_intent_data")
    unsupported = sorted(set(given) - set(SETUP_INTENT_FIELDS))
    if unsupported:
        raise InvalidParameter(
            f"The Stripe stand-in does not support setup_intent_data[{unsupported[0]}].",
            param=f"setup_intent_data[{unsupported[0]}]",
        )
    description = given.get("description")
    return {
        "description": None
        if description is None
        else text(description, "setup_intent_data[description]"),
        "metadata": string_map(given.get("metadata"), "setup_intent_data[metadata]"),
    }


def read_customer(
    running: StripeStandin, account: str, params: dict[str, Any]
) -> tuple[str | None, str]:
    """The session's customer, and its ``customer_creation``."""
    creation = params.get("customer_creation")
    if creation is not None and creation not in CUSTOMER_CREATION:
        raise InvalidParameter(
            f"Invalid customer_creation: must be one of {', '.join(CUSTOMER_CREATION)}",
            param="customer_creation",
        )
    customer_id = params.get("customer")
    if customer_id is None:
        return None, creation or "if_required"
    if "customer_email" in params:
        raise exclusive(("customer", "customer_email"), param="customer_email")
    if creation is not None:
        raise exclusive(("customer", "customer_creation"), param="customer_creation")
    customer_in(running, account, text(customer_id, "customer"))
    return customer_id, "if_required"


def new_setup_session(
    running: StripeStandin, account: str | None, params: dict[str, Any], public_url: str
) -> dict[str, Any]:
    """Validate a setup-mode create call and keep the new, open session; its API form."""
    if account is None:
        raise InvalidRequest(
            "The Stripe stand-in takes Checkout Sessions on connected accounts only: send the "
            "Stripe-Account header (the stripe_account option) of a connected account."
        )
    refuse_unsupported(params)
    read_mode(params)
    for name in NOT_IN_SETUP_MODE:
        if name in params:
            raise InvalidParameter(f"You cannot pass `{name}` in `setup` mode.", param=name)
    read_locale(params)
    ui_mode = read_ui_mode(params)
    currency = read_currency(params)
    customer, creation = read_customer(running, account, params)
    intent_data = read_setup_intent_data(params)
    if "success_url" not in params:
        raise missing("success_url")
    created = int(time.time())
    session_id = new_id("cs_test_c1", 56)
    session = session_object(
        session_id,
        created=created,
        currency=currency,
        amount=None,
        expires_at=read_expires_at(params, created),
        success_url=url(params["success_url"], "success_url"),
        cancel_url=url(params["cancel_url"], "cancel_url") if "cancel_url" in params else None,
        customer_email=read_customer_email(params),
        metadata=string_map(params.get("metadata"), "metadata"),
        client_reference_id=client_reference(params),
        ui_mode=ui_mode,
        url=f"{public_url}/c/pay/{session_id}",
        stored={name: params.get(name) for name in STORED_AS_GIVEN},
    )
    session.update(
        mode="setup",
        customer=customer,
        customer_creation=creation,
        payment_status="no_payment_required",
        payment_method_collection="always",
        total_details=None,
    )
    require_charges_enabled(running, account)
    with running.state.changing():
        running.state.put_object(account, setup_extras(session_id, intent_data))
        stored = running.state.put_object(account, session)
    return stored


def setup_extras(session_id: str, intent_data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": extras_key(session_id),
        "object": EXTRAS,
        "line_items": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/checkout/sessions/{session_id}/line_items",
        },
        "payment_intent_data": {"metadata": {}},
        "setup_intent_data": intent_data,
    }
