"""Contract tests: the stand-in's checkout.session, payment_intent, charge and refund against
Stripe's sample objects (``../shared/contracts/stripe-fixtures3.json``) and the resource
classes of stripe 16.1.0, in the same way as ``test_stripe_contracts``.

Stripe's samples fill in features vcpay does not use (shipping, tax, Adaptive Pricing...);
the stand-in answers null for them, as Stripe does when a feature is off. Those fields are
listed in ``NULL_WHEN_UNUSED`` and compared only when the stand-in gives a value. So is a
session's ``url``, which Stripe too gives only while the session is open.
"""

import copy
from typing import Any

import requests
import stripe

from tests.sandbox.stripe_helpers import PLATFORM_KEY, checkout_params, connect
from tests.sandbox.test_stripe_contracts import differences, fixtures  # noqa: F401

NULL_WHEN_UNUSED = {
    "checkout.session": (
        "after_expiration", "automatic_tax.liability", "collected_information", "consent",
        "consent_collection", "currency_conversion", "custom_text.after_submit",
        "custom_text.shipping_address", "custom_text.submit",
        "custom_text.terms_of_service_acceptance", "invoice_creation.invoice_data.issuer",
        "invoice_creation.invoice_data.rendering_options", "managed_payments",
        "payment_method_configuration_details", "permissions", "saved_payment_method_options",
        "shipping_address_collection", "shipping_cost", "wallet_options", "url",
    ),
    "payment_intent": (
        "automatic_payment_methods", "canceled_at", "managed_payments", "next_action",
        "payment_method_configuration_details", "processing", "shipping", "transfer_data",
    ),
    "charge": (
        "payment_method_details.card.installments",
        "payment_method_details.card.three_d_secure", "payment_method_details.card.wallet",
        "shipping", "source", "transfer_data",
    ),
    "refund": (),
}  # fmt: skip
ADDITIONS = {
    "checkout.session": {},
    "payment_intent": {},
    "charge": {
        "radar_options": "on every charge in API 2026-10-28 (stripe.Charge has it); the "
        "sample predates it",
        "outcome.risk_level": "Stripe sets it on card charges; the sample's outcome is bare",
        "outcome.risk_score": "as risk_level",
    },
    "refund": {
        "destination_details.card.reference": "on card refunds (stripe.Refund has it)",
        "destination_details.card.reference_status": "as reference",
        "destination_details.card.reference_type": "as reference",
    },
}
# Documented omissions: none. Metadata is free-form. The sample's last_payment_error is an
# idempotency error with only ``type``; a card decline carries more, compared against
# stripe.PaymentIntent below.
NOT_COMPARED = {"payment_intent": ("metadata", "last_payment_error")}


def sample(fixtures: dict[str, Any], kind: str) -> dict[str, Any]:  # noqa: F811
    expected = copy.deepcopy(fixtures[kind])
    for path in NULL_WHEN_UNUSED[kind]:
        *parents, name = path.split(".")
        node = expected
        for parent in parents:
            node = node[parent]
        node[name] = None
    return expected


def departures(fixtures, kind: str, actual: dict[str, Any]) -> list[str]:  # noqa: F811
    return differences(
        sample(fixtures, kind),
        actual,
        additions=ADDITIONS[kind],
        skipped=NOT_COMPARED.get(kind, ("metadata",)),
    )


def objects(stripe_api, stripe_sandbox) -> dict[str, dict[str, Any]]:
    """A paid session with a failed attempt first, and a partial refund."""
    account = connect(stripe_sandbox, stripe_api)
    options = {"stripe_account": account}
    params = checkout_params(
        customer_email="pat@example.com",
        locale="en",
        submit_type="pay",
        billing_address_collection="auto",
    )
    params["payment_intent_data"].update(
        statement_descriptor_suffix="CONSULT", transfer_group="payreq_12"
    )
    session = stripe_api.v1.checkout.sessions.create(params, options)
    declined = stripe_sandbox.pay(session.id, card="4000000000000002")
    stripe_sandbox.pay(session.id)
    found = stripe_api.v1.checkout.sessions.retrieve(session.id, options=options)
    payment_intent = stripe_api.v1.payment_intents.retrieve(found.payment_intent, options=options)
    charge = stripe_api.v1.charges.retrieve(payment_intent.latest_charge, options=options)
    refund = stripe_api.v1.refunds.create(
        {"payment_intent": payment_intent.id, "amount": 100, "metadata": {"why": "test"}},
        options,
    )
    return {
        "checkout.session": found.to_dict(),
        "payment_intent": payment_intent.to_dict(),
        "declined_payment_intent": declined["payment_intent"],
        "charge": stripe_api.v1.charges.retrieve(charge.id, options=options).to_dict(),
        "refund": refund.to_dict(),
    }


def test_session_intent_charge_and_refund_match_stripes_samples(
    fixtures,  # noqa: F811
    stripe_api,
    stripe_sandbox,
):
    found = objects(stripe_api, stripe_sandbox)

    for kind in ("checkout.session", "payment_intent", "charge", "refund"):
        problems = departures(fixtures, kind, found[kind])
        assert problems == [], f"{kind}: {problems}"
        assert found[kind]["object"] == fixtures[kind]["object"]
        prefix = fixtures[kind]["id"].split("_")[0]
        assert found[kind]["id"].startswith(prefix + "_")
    assert len(found["checkout.session"]["id"]) == len(fixtures["checkout.session"]["id"])
    assert len(found["payment_intent"]["id"]) == len(fixtures["payment_intent"]["id"])


def test_every_field_is_one_stripe_python_knows(stripe_api, stripe_sandbox):
    found = objects(stripe_api, stripe_sandbox)
    classes = {
        "checkout.session": stripe.checkout.Session,
        "payment_intent": stripe.PaymentIntent,
        "charge": stripe.Charge,
        "refund": stripe.Refund,
    }

    for kind, resource in classes.items():
        assert set(found[kind]) <= set(resource.__annotations__), kind
    details = found["charge"]["payment_method_details"]
    assert set(details["card"]) <= set(stripe.Charge.PaymentMethodDetails.Card.__annotations__)
    error = found["declined_payment_intent"]["last_payment_error"]
    assert set(error) <= set(stripe.PaymentIntent.LastPaymentError.__annotations__)
    assert set(found["checkout.session"]["customer_details"]) <= set(
        stripe.checkout.Session.CustomerDetails.__annotations__
    )


# A price made from price_data is one-time and plain: what recurring, tiered or
# pay-what-you-want prices carry is null, as Stripe sends it.
PRICE_NULL_WHEN_UNUSED = ("custom_unit_amount", "recurring", "transform_quantity")


def test_a_line_items_price_carries_every_field_of_stripes_sample(
    fixtures,  # noqa: F811
    stripe_api,
    stripe_sandbox,
):
    account = connect(stripe_sandbox, stripe_api)
    session = stripe_api.v1.checkout.sessions.create(checkout_params(), {"stripe_account": account})
    items = requests.get(
        f"{stripe_sandbox.base}/v1/checkout/sessions/{session.id}/line_items",
        headers={"Authorization": f"Bearer {PLATFORM_KEY}", "Stripe-Account": account},
        timeout=5,
    ).json()  # as sent: the library reads unit_amount_decimal as a Decimal
    price = items["data"][0]["price"]
    expected = copy.deepcopy(fixtures["item"]["price"])
    for name in PRICE_NULL_WHEN_UNUSED:
        expected[name] = None

    assert differences(expected, price) == []
    assert set(fixtures["item"]["price"]) <= set(price)
    assert set(price) <= set(stripe.Price.__annotations__)
    assert (price["type"], price["recurring"], price["unit_amount"]) == ("one_time", None, 8500)
    assert price["created"] == session.created
