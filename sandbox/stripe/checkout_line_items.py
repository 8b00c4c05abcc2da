"""A Checkout Session's line items: each an ``item`` with an inline ``price`` made from its
``price_data``, as Stripe makes them, all in one currency, and a total Stripe can charge."""

from typing import Any

from sandbox.stripe.checkout_params import integer, string_map
from sandbox.stripe.errors import (
    InvalidParameter,
    InvalidRequest,
    missing,
    no_such,
)
from sandbox.stripe.money import CURRENCIES, MAXIMUM_AMOUNT, MINIMUM_AMOUNT
from sandbox.stripe.store import new_id

MAX_LINE_ITEMS = 100


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
