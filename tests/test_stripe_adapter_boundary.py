"""Stripe's shapes stay in the adapter, and the adapters are passed in.

- ``vcpay/integrations`` reads Stripe's events and objects into typed values; nothing else in
  vcpay reads a Stripe dict (``["metadata"]``, ``.get("last_payment_error")``...).
- A verified event becomes one typed value carrying ids, the account it came from and the
  metadata's hint, never amounts or states (those are read from Stripe again).
- Services never look an adapter up: views, tasks, handlers and commands do, and pass it in.
"""

import ast
import json
from pathlib import Path

import pytest

from vcpay.integrations.stripe_events import read_change
from vcpay.integrations.stripe_values import (
    AccountAuthorized,
    AccountChanged,
    AccountDeauthorized,
    ChargeRefunded,
    CheckoutChanged,
    PaymentFailed,
)

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ROOT / "vcpay"
ADAPTERS = PRODUCT / "integrations"
# Keys of Stripe's objects that vcpay's own data never uses (not "data" or "object": Redis
# messages and forms have those too).
STRIPE_KEYS = {
    "amount_refunded",
    "customer_details",
    "last_payment_error",
    "latest_charge",
    "metadata",
    "payment_intent",
    "payment_method_details",
    "stripe_user_id",
}
# Where the running application's adapters are looked up, to be passed to services.
# refund_views.py, fee_views.py, saved_card_views.py: the refunds', the fee before joining's
# and saved cards' blueprints, view modules of their own beside payments' views.py.
ENTRY_POINTS = {
    "views.py",
    "refund_views.py",
    "fee_views.py",
    "saved_card_views.py",
    "tasks.py",
    "stripe_handlers.py",
    "cli.py",
}
LOOKUPS = ("for_app", "from_config")
ADAPTER_CLASSES = {"StripeApi", "ServiceDesk"}


def product_modules_outside_adapters() -> list[Path]:
    return sorted(path for path in PRODUCT.rglob("*.py") if ADAPTERS not in path.parents)


def _key(node: ast.AST) -> str | None:
    """The string a subscript or ``.get(...)`` reads, if it is a literal."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return node.slice.value if isinstance(node.slice.value, str) else None
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return node.args[0].value if isinstance(node.args[0].value, str) else None
    return None


def test_nothing_outside_the_adapter_reads_a_stripe_object():
    offending = [
        f"{path.relative_to(ROOT)}:{node.lineno} reads {key!r}"
        for path in product_modules_outside_adapters()
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if (key := _key(node)) in STRIPE_KEYS
    ]
    assert offending == []


def test_services_are_given_the_adapters_never_look_them_up():
    offending = [
        f"{path.relative_to(ROOT)}:{node.lineno} looks up {node.func.value.id}"
        for path in product_modules_outside_adapters()
        if path.name not in ENTRY_POINTS
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in LOOKUPS
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in ADAPTER_CLASSES
    ]
    assert offending == []


def event_body(data_object: dict) -> str:
    return json.dumps({"id": "evt_1", "type": "x", "data": {"object": data_object}})


def test_a_checkout_event_is_its_session_and_account():
    body = event_body({"id": "cs_test_1", "object": "checkout.session", "amount_total": 9})

    change = read_change("checkout.session.completed", "acct_A", body)

    assert change == CheckoutChanged(account="acct_A", session_id="cs_test_1")


def test_a_declined_attempt_carries_its_intent_and_the_metadata_hint_only():
    body = event_body(
        {
            "id": "pi_1",
            "object": "payment_intent",
            "metadata": {"payment_request": "key-1"},
            "last_payment_error": {"message": "Words of the event's sender"},
        }
    )

    change = read_change("payment_intent.payment_failed", "acct_A", body)

    assert change == PaymentFailed(
        account="acct_A", payment_intent_id="pi_1", payment_request="key-1"
    )


def test_a_refund_carries_its_charge_and_intent_never_an_amount():
    body = event_body(
        {
            "id": "ch_1",
            "object": "charge",
            "payment_intent": "pi_1",
            "amount_refunded": 500,
            "metadata": {"payment_request": "x" * 41},  # longer than any key: no hint
        }
    )

    change = read_change("charge.refunded", None, body)

    assert change == ChargeRefunded(account=None, charge_id="ch_1", payment_intent_id="pi_1")


@pytest.mark.parametrize(
    ("event_type", "value"),
    [
        ("account.updated", AccountChanged),
        ("account.application.authorized", AccountAuthorized),
        ("account.application.deauthorized", AccountDeauthorized),
    ],
)
def test_an_account_event_is_its_account(event_type, value):
    assert read_change(event_type, "acct_A", "not read") == value(account="acct_A")


@pytest.mark.parametrize(
    "body",
    [
        "{}",
        event_body({"object": "checkout.session"}),
        event_body({"id": "not an id"}),
        json.dumps({"data": {"object": ["cs_test_1"]}}),
    ],
)
def test_an_object_without_a_stripe_id_is_refused(body):
    with pytest.raises(ValueError):
        read_change("checkout.session.expired", "acct_A", body)


def test_a_type_vcpay_does_not_read_is_refused():
    with pytest.raises(ValueError):
        read_change("customer.created", "acct_A", event_body({"id": "cus_1"}))
