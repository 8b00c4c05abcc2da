"""Checkout Sessions on a connected account (direct charges): a create call made into an
open session, and the ``checkout.session`` object in Stripe's shape.

Reading the call is in ``checkout_params`` and ``checkout_line_items``; how a session ends by
expiring in ``checkout_expiry``; paying in ``payments``; the pay page in ``paypage``; the
``/v1`` routes in ``checkout_api``. What a session does not show (its line items, and what its
PaymentIntent will carry) is kept beside it, in an entry of its own, so stored sessions stay in
the API's shape.
"""

import time
from typing import Any

from sandbox.stripe.checkout_line_items import check_total, read_line_items
from sandbox.stripe.checkout_params import (
    STORED_AS_GIVEN,
    client_reference,
    read_customer_email,
    read_expires_at,
    read_locale,
    read_mode,
    read_payment_intent_data,
    read_ui_mode,
    refuse_unsupported,
    string_map,
    url,
)
from sandbox.stripe.errors import (
    InvalidRequest,
    missing,
)
from sandbox.stripe.runtime import StripeStandin
from sandbox.stripe.store import new_id

SESSION = "checkout.session"
EXTRAS = "stand-in.checkout.session.extras"  # never shown by the API


def require_charges_enabled(running: StripeStandin, account: str) -> dict[str, Any]:
    clinic = running.state.account(account) or {}
    if not clinic.get("charges_enabled"):
        raise InvalidRequest(
            "This account cannot currently make charges: its charges_enabled is false (its "
            "card_payments capability is inactive). The account holder must finish setting "
            "up the account in their Dashboard.",
            code="account_invalid",
        )
    return clinic


def new_session(
    running: StripeStandin, account: str | None, params: dict[str, Any], public_url: str
) -> dict[str, Any]:
    """Validate a create call and keep the new, open session; its API form."""
    if account is None:
        raise InvalidRequest(
            "The Stripe stand-in takes Checkout Sessions as direct charges only: send the "
            "Stripe-Account header (the stripe_account option) of a connected account."
        )
    refuse_unsupported(params)
    read_mode(params)
    read_locale(params)
    ui_mode = read_ui_mode(params)
    created = int(time.time())
    items = read_line_items(params, created)
    currency = items[0]["currency"]
    total = sum(item["amount_total"] for item in items)
    check_total(total, currency)
    if "success_url" not in params:
        raise missing("success_url")
    session_id = new_id("cs_test_a1", 56)
    session = session_object(
        session_id,
        created=created,
        currency=currency,
        amount=total,
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
    intent_data = read_payment_intent_data(params, total)
    require_charges_enabled(running, account)
    with running.state.changing():
        running.state.put_object(account, extras_entry(session_id, items, intent_data))
        stored = running.state.put_object(account, session)
    return stored


def extras_entry(
    session_id: str, items: list[dict[str, Any]], intent_data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": extras_key(session_id),
        "object": EXTRAS,
        "line_items": {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/checkout/sessions/{session_id}/line_items",
        },
        "payment_intent_data": intent_data,
    }


def extras_key(session_id: str) -> str:
    return f"{session_id}/extras"


def extras(running: StripeStandin, account: str | None, session_id: str) -> dict[str, Any]:
    found = running.state.get_object(account, extras_key(session_id))
    return found or extras_entry(session_id, [], {"metadata": {}})


def line_items(running: StripeStandin, account: str | None, session_id: str) -> dict[str, Any]:
    """The ``list`` of a session's line items (``item`` objects)."""
    return extras(running, account, session_id)["line_items"]


def session_object(session_id: str, **fields: Any) -> dict[str, Any]:
    """A ``checkout.session`` in Stripe's shape; features vcpay does not use are off (null)."""
    stored = fields["stored"]
    session = {
        "id": session_id,
        "object": SESSION,
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": fields["amount"],
        "amount_total": fields["amount"],
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": stored["billing_address_collection"],
        "cancel_url": fields["cancel_url"],
        "client_reference_id": fields["client_reference_id"],
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": fields["created"],
        "currency": fields["currency"],
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": None,
        "customer_account": None,
        "customer_creation": "if_required",
        "customer_details": None,
        "customer_email": fields["customer_email"],
        "discounts": [],
        "expires_at": fields["expires_at"],
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": {
            "enabled": False,
            "invoice_data": {
                "account_tax_ids": None,
                "custom_fields": None,
                "description": None,
                "footer": None,
                "issuer": None,
                "metadata": {},
                "rendering_options": None,
            },
        },
        "livemode": False,
        "locale": stored["locale"],
        "managed_payments": None,
        "metadata": fields["metadata"],
        "mode": "payment",
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": stored["submit_type"],
        "subscription": None,
        "success_url": fields["success_url"],
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": fields["ui_mode"],
        "url": fields["url"],
        "wallet_options": None,
    }
    session["client_secret"] = None  # only embedded Checkout has one
    return session
