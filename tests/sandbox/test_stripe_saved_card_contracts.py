"""Contract tests: the customer, payment_method, setup_intent, off-session payment_intent and
setup-mode checkout.session against Stripe's sample objects
(``../shared/contracts/stripe-fixtures3.json``) and the resource classes of stripe 16.1.0,
in the same way as ``test_stripe_contracts``.

Where Stripe's sample fills in a feature a saved card does not use (discounts, invoicing
templates, shipping, a wallet, payment-method configurations), the stand-in answers null as
Stripe does when it is off; those fields are in ``NULL_WHEN_UNUSED`` and compared only when
the stand-in gives a value.
"""

import copy
from typing import Any

import stripe

from tests.sandbox.stripe_helpers import connect
from tests.sandbox.test_stripe_checkout_contracts import NULL_WHEN_UNUSED as CHECKOUT_NULLS
from tests.sandbox.test_stripe_contracts import differences, fixtures  # noqa: F401
from tests.sandbox.test_stripe_saved_cards import (
    ALWAYS_AUTHENTICATE,
    charge,
    new_customer,
    on,
    setup_session,
)

NULL_WHEN_UNUSED = {
    # currency: set by invoices and subscriptions, never by a PaymentIntent.
    "customer": (
        "address", "currency", "discount", "shipping", "invoice_settings.rendering_options",
    ),
    "payment_method": (
        "billing_details.address", "billing_details.phone", "card.generated_from",
        "card.wallet",
    ),
    "setup_intent": (
        "automatic_payment_methods", "payment_method_configuration_details", "next_action",
        "last_setup_error",
    ),
    "payment_intent": CHECKOUT_NULLS["payment_intent"],
    # A setup-mode session has no amounts, so no totals and no PaymentIntent either.
    "checkout.session": (*CHECKOUT_NULLS["checkout.session"], "total_details", "payment_intent"),
}  # fmt: skip
# Free-form, or a feature's own settings that differ per object.
NOT_COMPARED = {
    "customer": ("metadata",),
    "payment_method": ("metadata",),
    "setup_intent": ("metadata",),
    "payment_intent": ("metadata", "last_payment_error"),
    "checkout.session": ("metadata",),
}
ADDITIONS = {
    "setup_intent": {
        "payment_method_options.card": "what Stripe gives a card SetupIntent; the sample's "
        "payment_method_options is empty",
    },
}
CLASSES = {
    "customer": stripe.Customer,
    "payment_method": stripe.PaymentMethod,
    "setup_intent": stripe.SetupIntent,
    "payment_intent": stripe.PaymentIntent,
    "checkout.session": stripe.checkout.Session,
}


def sample(fixtures: dict[str, Any], kind: str) -> dict[str, Any]:  # noqa: F811
    expected = copy.deepcopy(fixtures[kind])
    for path in NULL_WHEN_UNUSED[kind]:
        *parents, name = path.split(".")
        node = expected
        for parent in parents:
            node = node[parent]
        node[name] = None
    return expected


def objects(stripe_api, stripe_sandbox) -> dict[str, dict[str, Any]]:
    """A card saved with 3-D Secure, charged off-session (declined for authentication), then
    confirmed with the customer and paid."""
    clinic = connect(stripe_sandbox, stripe_api)
    customer = new_customer(stripe_api, clinic, description="Patient of Dr Lee", phone="0400")
    session = setup_session(
        stripe_api, clinic, customer.id, cancel_url="http://127.0.0.1:9/calls/7"
    )
    saved = stripe_sandbox.pay(session.id, card=ALWAYS_AUTHENTICATE, authenticate=True)
    method_id = saved["setup_intent"]["payment_method"]
    try:
        charge(stripe_api, clinic, customer.id, method_id, receipt_email="pat@example.com")
    except stripe.CardError as declined:
        payment_intent_id = declined.error.payment_intent.id
    stripe_api.v1.payment_intents.confirm(
        payment_intent_id,
        {"payment_method": method_id, "return_url": "http://127.0.0.1:9/back"},
        on(clinic),
    )
    stripe_sandbox.authenticate_payment(payment_intent_id)
    return {
        "customer": stripe_api.v1.customers.retrieve(customer.id, options=on(clinic)).to_dict(),
        "payment_method": stripe_api.v1.payment_methods.retrieve(
            method_id, options=on(clinic)
        ).to_dict(),
        "setup_intent": stripe_api.v1.setup_intents.retrieve(
            saved["setup_intent"]["id"], options=on(clinic)
        ).to_dict(),
        "payment_intent": stripe_api.v1.payment_intents.retrieve(
            payment_intent_id, options=on(clinic)
        ).to_dict(),
        "checkout.session": stripe_api.v1.checkout.sessions.retrieve(
            session.id, options=on(clinic)
        ).to_dict(),
    }


def test_saved_card_objects_match_stripes_samples(
    fixtures,  # noqa: F811
    stripe_api,
    stripe_sandbox,
):
    found = objects(stripe_api, stripe_sandbox)

    for kind, actual in found.items():
        problems = differences(
            sample(fixtures, kind),
            actual,
            additions=ADDITIONS.get(kind, {}),
            skipped=NOT_COMPARED[kind],
        )
        assert problems == [], f"{kind}: {problems}"
        assert actual["object"] == fixtures[kind]["object"]
        prefix = fixtures[kind]["id"].split("_")[0]
        assert actual["id"].startswith(prefix + "_")
        assert len(actual["id"]) == len(fixtures[kind]["id"]), kind


def test_every_field_is_one_stripe_python_knows(stripe_api, stripe_sandbox):
    found = objects(stripe_api, stripe_sandbox)

    for kind, resource in CLASSES.items():
        assert set(found[kind]) <= set(resource.__annotations__), kind
    assert set(found["payment_method"]["card"]) <= set(stripe.PaymentMethod.Card.__annotations__)
    error = found["payment_intent"]["last_payment_error"]
    assert error is None
    assert found["payment_intent"]["status"] == "succeeded"
    assert found["checkout.session"]["mode"] == "setup"
