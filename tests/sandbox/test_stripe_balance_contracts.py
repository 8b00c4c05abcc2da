"""Contract tests: the stand-in's balance transactions, payouts and failed refunds against
Stripe's sample objects (``../shared/contracts/stripe-fixtures3.json``) and the resource
classes of stripe 16.1.0, in the same way as ``test_stripe_contracts``."""

from typing import Any

import stripe

from tests.sandbox.stripe_helpers import connect
from tests.sandbox.test_stripe_balance import paid_charge
from tests.sandbox.test_stripe_contracts import differences, fixtures  # noqa: F401

# Stripe sets these only on a failed refund; the sample is a refund that succeeded.
FAILED_REFUND_ADDITIONS = {
    "failure_balance_transaction": "set once a refund fails (stripe.Refund has it)",
    "failure_reason": "as failure_balance_transaction",
}
# The sample refund's card destination is bare; the stand-in's carries the reference fields
# stripe.Refund knows (as test_stripe_checkout_contracts documents).
REFUND_NOT_COMPARED = ("metadata", "destination_details")


def objects(stripe_api, stripe_sandbox) -> dict[str, list[dict[str, Any]]]:
    """Every kind of balance transaction, a paid and a failed payout, a failed refund."""
    account = connect(stripe_sandbox, stripe_api)
    options = {"stripe_account": account}
    charge = paid_charge(stripe_api, stripe_sandbox, account)
    refund = stripe_api.v1.refunds.create({"charge": charge.id, "amount": 500}, options)
    stripe_sandbox.refund_fails(refund.id)
    stripe_sandbox.settle_balance(account)
    [failed] = stripe_sandbox.pay_out(account, fail="account_closed")
    [paid] = stripe_sandbox.pay_out(account)
    transactions = stripe_api.v1.balance_transactions.list({"limit": 100}, options)
    return {
        "balance_transaction": [t.to_dict() for t in transactions.data],
        "payout": [
            stripe_api.v1.payouts.retrieve(p["id"], options=options).to_dict()
            for p in (failed, paid)
        ],
        "refund": [stripe_api.v1.refunds.retrieve(refund.id, options=options).to_dict()],
    }


def test_balance_transactions_payouts_and_failed_refunds_match_stripes_samples(
    fixtures,  # noqa: F811
    stripe_api,
    stripe_sandbox,
):
    found = objects(stripe_api, stripe_sandbox)

    kinds = {t["type"] for t in found["balance_transaction"]}
    assert kinds == {"charge", "refund", "refund_failure", "payout", "payout_failure"}
    for kind, items in found.items():
        sample = fixtures[kind]
        prefix = sample["id"].split("_")[0]
        for item in items:
            problems = differences(
                sample,
                item,
                additions=FAILED_REFUND_ADDITIONS if kind == "refund" else {},
                skipped=REFUND_NOT_COMPARED if kind == "refund" else ("metadata",),
            )
            assert problems == [], f"{kind} {item['id']}: {problems}"
            assert item["object"] == sample["object"]
            assert item["id"].startswith(prefix + "_") and len(item["id"]) == len(sample["id"])


def test_every_field_is_one_stripe_python_knows(stripe_api, stripe_sandbox):
    found = objects(stripe_api, stripe_sandbox)
    classes = {
        "balance_transaction": stripe.BalanceTransaction,
        "payout": stripe.Payout,
        "refund": stripe.Refund,
    }

    for kind, items in found.items():
        for item in items:
            assert set(item) <= set(classes[kind].__annotations__), kind
    charge = next(t for t in found["balance_transaction"] if t["type"] == "charge")
    for detail in charge["fee_details"]:
        assert set(detail) == set(stripe.BalanceTransaction.FeeDetail.__annotations__)
    for payout in found["payout"]:
        assert set(payout["trace_id"]) == set(stripe.Payout.TraceId.__annotations__)
