"""Checkout Sessions on a connected account (direct charges): the parameters Stripe takes
and refuses, the ``checkout.session`` object, and how a session ends by expiring (on request,
when ``expires_at`` passes, or from the control API).

Paying is in ``payments``; the pay page in ``paypage``; the ``/v1`` routes in
``checkout_api``. What a session does not show (its line items, and what its PaymentIntent
will carry) is kept beside it, in an entry of its own, so stored sessions stay in the API's
shape.
"""

import logging
import time
from typing import Any

from stripe.params.checkout import SessionCreateParams

from sandbox.stripe.accounts import display_name
from sandbox.stripe.cards import EMAIL
from sandbox.stripe.errors import (
    InvalidParameter,
    InvalidRequest,
    invalid_integer,
    missing,
    no_such,
)
from sandbox.stripe.events import originating_request
from sandbox.stripe.money import CURRENCIES, MAXIMUM_AMOUNT, MINIMUM_AMOUNT
from sandbox.stripe.params import refuse_unknown
from sandbox.stripe.runtime import StripeStandin
from sandbox.stripe.store import new_id

log = logging.getLogger(__name__)

SESSION = "checkout.session"
EXTRAS = "stand-in.checkout.session.extras"  # never shown by the API
# From the session's creation, to the second, with no leeway, as Stripe measures it: a client
# that asks for exactly now + 30 minutes is refused if a second passes on the way.
MIN_LIFETIME = 30 * 60
MAX_LIFETIME = 24 * 60 * 60
MAX_LINE_ITEMS = 100
MODES = ("payment", "setup", "subscription")
UI_MODES = ("hosted_page", "embedded_page", "elements", "form")
PAYMENT_INTENT_FIELDS = (
    "application_fee_amount",
    "description",
    "metadata",
    "receipt_email",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_group",
)
# Known to Stripe, and harmless to take without acting on them.
STORED_AS_GIVEN = ("locale", "submit_type", "billing_address_collection")
SUPPORTED = frozenset(
    {
        "mode", "line_items", "payment_intent_data", "metadata", "client_reference_id",
        "success_url", "cancel_url", "expires_at", "customer_email", "ui_mode",
        "payment_method_types", "expand", *STORED_AS_GIVEN,
    }
)  # fmt: skip
EXPANDABLE = ("payment_intent", "line_items", "customer", "invoice", "setup_intent")


def integer(value: Any, param: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise invalid_integer(value, param) from None


def text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise InvalidParameter(f"Invalid string: {value}", param=param)
    return value


def string_map(value: Any, param: str) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter("Invalid hash", param=param)
    if len(value) > 50:
        raise InvalidParameter("You can specify up to 50 metadata keys.", param=param)
    return {k: v for k, v in value.items() if v != ""}


def url(value: Any, param: str) -> str:
    value = text(value, param)
    if not value.startswith(("http://", "https://")):
        raise InvalidParameter("Not a valid URL", param=param, code="url_invalid")
    return value


# -- reading the create call -----------------------------------------------------------------


def read_line_item(item: Any, index: int, created: int) -> dict[str, Any]:
    """One line item as its ``item`` object (Stripe's line item, with an inline price)."""
    at = f"line_items[{index}]"
    if not isinstance(item, dict):
        raise InvalidParameter("Invalid hash", param=at)
    if "price" in item:
        raise no_such("price", item["price"], param=f"{at}[price]")
    if "quantity" not in item:
        raise missing(f"{at}[quantity]")
    quantity = integer(item["quantity"], f"{at}[quantity]")
    if quantity < 1:
        raise InvalidParameter(
            "This value must be greater than or equal to 1.", param=f"{at}[quantity]"
        )
    price_data = item.get("price_data")
    if not isinstance(price_data, dict):
        raise missing(f"{at}[price_data]")
    at = f"{at}[price_data]"
    currency = price_data.get("currency")
    if currency is None:
        raise missing(f"{at}[currency]")
    if currency not in CURRENCIES:
        raise InvalidParameter(
            f"Invalid currency: {currency}. Stripe currently supports these currencies: "
            f"{', '.join(CURRENCIES)}. (The stand-in takes these, in lowercase.)",
            param=f"{at}[currency]",
        )
    if "product" in price_data:
        raise no_such("product", price_data["product"], param=f"{at}[product]")
    product = price_data.get("product_data")
    if not isinstance(product, dict):
        raise missing(f"{at}[product_data]")
    name = product.get("name")
    if not isinstance(name, str) or not name.strip():
        raise missing(f"{at}[product_data][name]")
    if "unit_amount_decimal" in price_data:
        raise InvalidParameter(
            "The Stripe stand-in takes unit_amount, not unit_amount_decimal.",
            param=f"{at}[unit_amount_decimal]",
        )
    if "unit_amount" not in price_data:
        raise missing(f"{at}[unit_amount]")
    unit_amount = integer(price_data["unit_amount"], f"{at}[unit_amount]")
    if unit_amount < 0:
        raise InvalidParameter(
            "This value must be greater than or equal to 0.", param=f"{at}[unit_amount]"
        )
    amount = unit_amount * quantity
    return {
        "id": new_id("li_"),
        "object": "item",
        "amount_discount": 0,
        "amount_subtotal": amount,
        "amount_tax": 0,
        "amount_total": amount,
        "currency": currency,
        "description": name.strip(),
        "metadata": string_map(item.get("metadata"), f"line_items[{index}][metadata]"),
        "price": inline_price(currency, unit_amount, created),
        "quantity": quantity,
    }


def inline_price(currency: str, unit_amount: int, created: int) -> dict[str, Any]:
    """The ``price`` Stripe makes for ``price_data``: one-time, archived at once, with a
    product of its own; the fields of a recurring or tiered price are null."""
    return {
        "id": new_id("price_"),
        "object": "price",
        "active": False,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": new_id("prod_", 14),
        "recurring": None,
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def read_line_items(params: dict[str, Any], created: int) -> list[dict[str, Any]]:
    given = params.get("line_items")
    if not given:
        raise InvalidParameter(
            "line_items is required in payment mode.", param="line_items", code="parameter_missing"
        )
    if not isinstance(given, list):
        raise InvalidParameter("Invalid array", param="line_items")
    if len(given) > MAX_LINE_ITEMS:
        raise InvalidParameter(
            f"You may only specify up to {MAX_LINE_ITEMS} line items.", param="line_items"
        )
    items = [read_line_item(item, index, created) for index, item in enumerate(given)]
    for index, item in enumerate(items):
        if item["currency"] != items[0]["currency"]:
            raise InvalidParameter(
                "All line items in a Checkout Session must use the same currency.",
                param=f"line_items[{index}][price_data][currency]",
            )
    return items


def check_total(amount: int, currency: str) -> None:
    if amount < MINIMUM_AMOUNT:
        raise InvalidRequest(f"Amount must be at least $0.50 {currency}", code="amount_too_small")
    if amount > MAXIMUM_AMOUNT:
        raise InvalidRequest("Amount must be no more than $999,999.99", code="amount_too_large")


def read_expires_at(params: dict[str, Any], created: int) -> int:
    if "expires_at" not in params:
        return created + MAX_LIFETIME
    expires_at = integer(params["expires_at"], "expires_at")
    if expires_at < created + MIN_LIFETIME:
        raise InvalidParameter(
            "The `expires_at` timestamp must be at least 30 minutes after the Checkout "
            "Session is created.",
            param="expires_at",
        )
    if expires_at > created + MAX_LIFETIME:
        raise InvalidParameter(
            "The `expires_at` timestamp must be at most 24 hours after the Checkout Session "
            "is created.",
            param="expires_at",
        )
    return expires_at


def read_mode(params: dict[str, Any]) -> None:
    mode = params.get("mode")
    if mode is None:
        raise missing("mode")
    if mode not in MODES:
        raise InvalidParameter(f"Invalid mode: must be one of {', '.join(MODES)}", param="mode")
    if mode != "payment":
        raise InvalidParameter(
            f"The Stripe stand-in supports Checkout in payment mode only, not {mode}.",
            param="mode",
        )


def read_ui_mode(params: dict[str, Any]) -> str:
    ui_mode = params.get("ui_mode", "hosted_page")
    if ui_mode not in UI_MODES:
        raise InvalidParameter(
            f"Invalid ui_mode: must be one of {', '.join(UI_MODES)}", param="ui_mode"
        )
    if ui_mode != "hosted_page":
        raise InvalidParameter(
            f"The Stripe stand-in supports only hosted Checkout (ui_mode=hosted_page), not "
            f"{ui_mode}: it has no Stripe.js.",
            param="ui_mode",
        )
    return ui_mode


def read_payment_intent_data(params: dict[str, Any], total: int) -> dict[str, Any]:
    given = params.get("payment_intent_data") or {}
    if not isinstance(given, dict):
        raise InvalidParameter("Invalid hash", param="payment_intent_data")
    unsupported = sorted(set(given) - set(PAYMENT_INTENT_FIELDS))
    if unsupported:
        raise InvalidParameter(
            f"The Stripe stand-in does not support payment_intent_data[{unsupported[0]}].",
            param=f"payment_intent_data[{unsupported[0]}]",
        )
    data: dict[str, Any] = {
        name: text(given[name], f"payment_intent_data[{name}]")
        for name in PAYMENT_INTENT_FIELDS
        if name in given and name not in ("metadata", "application_fee_amount")
    }
    data["metadata"] = string_map(given.get("metadata"), "payment_intent_data[metadata]")
    if "application_fee_amount" in given:
        param = "payment_intent_data[application_fee_amount]"
        fee = integer(given["application_fee_amount"], param)
        if not 0 <= fee <= total:
            raise InvalidParameter(
                "The application fee must be between 0 and the amount of the payment.",
                param=param,
            )
        data["application_fee_amount"] = fee
    email = data.get("receipt_email")
    if email is not None and not EMAIL.match(email):
        raise InvalidParameter(
            f"Invalid email address: {email}",
            param="payment_intent_data[receipt_email]",
            code="email_invalid",
        )
    return data


def read_customer_email(params: dict[str, Any]) -> str | None:
    email = params.get("customer_email")
    if email is None:
        return None
    if not EMAIL.match(text(email, "customer_email")):
        raise InvalidParameter(
            f"Invalid email address: {email}", param="customer_email", code="email_invalid"
        )
    return email


def refuse_unsupported(params: dict[str, Any]) -> None:
    refuse_unknown(params, SessionCreateParams)
    for name in params:
        if name not in SUPPORTED:
            raise InvalidParameter(
                f"The Stripe stand-in does not support {name} on Checkout Sessions yet.",
                param=name,
            )
    if params.get("payment_method_types") not in (None, ["card"]):
        raise InvalidParameter(
            "The Stripe stand-in takes only card payments: payment_method_types=[card].",
            param="payment_method_types",
        )


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


def client_reference(params: dict[str, Any]) -> str | None:
    reference = params.get("client_reference_id")
    if reference is None:
        return None
    if len(text(reference, "client_reference_id")) > 200:
        raise InvalidParameter(
            "client_reference_id must be at most 200 characters.", param="client_reference_id"
        )
    return reference


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


# -- finding, and expiring ---------------------------------------------------------------------


def session_in(running: StripeStandin, account: str | None, session_id: str) -> dict[str, Any]:
    """A session of this account, expired first if its time is up."""
    expire_if_due(running, account, session_id)
    session = running.state.get_object(account, session_id)
    if session is None or session.get("object") != SESSION:
        raise no_such(SESSION, session_id)
    return session


def find_session(running: StripeStandin, session_id: str) -> tuple[str | None, dict] | None:
    """A session in whichever account holds it (the pay page has only the id)."""
    found = running.state.find_object(session_id)
    if found is None or found[1].get("object") != SESSION:
        return None
    account = found[0]
    expire_if_due(running, account, session_id)
    return account, running.state.get_object(account, session_id) or found[1]


def merchant_name(running: StripeStandin, account: str | None) -> str:
    clinic = running.state.account(account) if account else None
    return display_name(clinic) if clinic else running.settings.platform_name


def expire(running: StripeStandin, account: str | None, session_id: str) -> dict[str, Any]:
    """End an open session: ``checkout.session.expired``, and its PaymentIntent, if a payment
    was tried, is canceled. Raises InvalidRequest if the session is not open."""
    with running.state.lock:
        session = running.state.get_object(account, session_id)
        if session is None:
            raise no_such(SESSION, session_id)
        if session["status"] != "open":
            raise InvalidRequest(
                'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f'Checkout Session has a status of "{session["status"]}".',
                param="session",
            )
        session.update(status="expired", url=None)
        running.state.put_object(account, session)
        cancel_payment_intent(running, account, session.get("payment_intent"))
        running.events.emit(
            "checkout.session.expired", session, account, request=originating_request()
        )
        return session


def cancel_payment_intent(running: StripeStandin, account: str | None, pi_id: str | None) -> None:
    payment_intent = running.state.get_object(account, pi_id) if pi_id else None
    if payment_intent is None or payment_intent["status"] in ("succeeded", "canceled"):
        return
    payment_intent.update(
        status="canceled",
        canceled_at=int(time.time()),
        cancellation_reason="abandoned",
        next_action=None,
    )
    running.state.put_object(account, payment_intent)
    running.events.emit(
        "payment_intent.canceled", payment_intent, account, request=originating_request()
    )


def is_due(session: dict[str, Any], now: float) -> bool:
    return session["status"] == "open" and session["expires_at"] <= now


def expire_if_due(running: StripeStandin, account: str | None, session_id: str) -> None:
    with running.state.lock:
        session = running.state.get_object(account, session_id)
        if session and session.get("object") == SESSION and is_due(session, time.time()):
            expire(running, account, session_id)


def expire_due_sessions(running: StripeStandin) -> int:
    """What Stripe's clock does: every open session past its ``expires_at`` expires."""
    now = time.time()
    expired = 0
    with running.state.lock:
        for account, session in running.state.objects_everywhere(SESSION):
            if is_due(session, now):
                expire(running, account, session["id"])
                expired += 1
    return expired
