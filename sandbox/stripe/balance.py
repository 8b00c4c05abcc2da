"""The connected account's balance: one balance transaction for each movement of money
(a charge, a refund, a failed refund, a payout, a failed payout), in Stripe's shape, and
which of them a payout carried.

Stripe's fee is the stand-in's own figure: its standard Australian price for domestic cards
since April 2024, 1.7% + A$0.30, rounded half up to the cent, for every charge whatever its
card or currency. A platform's ``application_fee_amount`` is added to the fee, as on a
direct charge. Refunds cost nothing and return no fee. Funds are ``pending`` until
``available_on`` (``StripeStandinSettings.available_after_seconds`` after the charge), then
``available``; ``make_due_available`` notices, as reads and the payout clock call it.
"""

import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandbox.stripe.runtime import StripeStandin
from sandbox.stripe.store import new_id

TRANSACTION = "balance_transaction"
PERCENT_FEE = Decimal("0.017")
FIXED_FEE = 30
# Stripe's reporting category for each kind of transaction the stand-in makes.
REPORTING_CATEGORIES = {
    "charge": "charge",
    "refund": "refund",
    "refund_failure": "refund_failure",
    "payout": "payout",
    "payout_failure": "payout_reversal",
}
# Which payout carried each transaction: Stripe does not show it on the transaction, but
# answers ``?payout=`` with it, so it is kept beside them, per account.
PAYOUT_LINKS = "standin/payout_links"


def stripe_fee(amount: int) -> int:
    """``8500`` → ``175``: 1.7% (144.5 → 145) plus 30 cents."""
    percent = (Decimal(amount) * PERCENT_FEE).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(percent) + FIXED_FEE


def fee_details(charge: dict[str, Any], platform_name: str) -> list[dict[str, Any]]:
    details = [
        {
            "amount": stripe_fee(charge["amount"]),
            "application": None,
            "currency": charge["currency"],
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }
    ]
    if charge.get("application_fee_amount"):
        details.append(
            {
                "amount": charge["application_fee_amount"],
                "application": charge["application"],
                "currency": charge["currency"],
                "description": f"{platform_name} application fee",
                "type": "application_fee",
            }
        )
    return details


def transaction_object(
    kind: str,
    source: str,
    amount: int,
    currency: str,
    description: str | None,
    available_on: int,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    details = details or []
    fee = sum(d["amount"] for d in details)
    now = int(time.time())
    return {
        "id": new_id("txn_"),
        "object": TRANSACTION,
        "amount": amount,
        "available_on": available_on,
        "balance_type": "payments",
        "created": now,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": details,
        "net": amount - fee,
        "reporting_category": REPORTING_CATEGORIES[kind],
        "source": source,
        "status": "available" if available_on <= now else "pending",
        "type": kind,
    }


def record(running: StripeStandin, account: str | None, kind: str, **fields: Any) -> str:
    """Keep a new transaction; its id, for the object it belongs to."""
    transaction = transaction_object(kind, **fields)
    running.state.put_object(account, transaction)
    return transaction["id"]


def record_charge(running: StripeStandin, account: str | None, charge: dict[str, Any]) -> str:
    return record(
        running,
        account,
        "charge",
        source=charge["id"],
        amount=charge["amount"],
        currency=charge["currency"],
        description=charge["description"],
        available_on=int(time.time() + running.settings.available_after_seconds),
        details=fee_details(charge, running.settings.platform_name),
    )


def record_refund(running: StripeStandin, account: str | None, refund: dict[str, Any]) -> str:
    """A refund leaves the balance at once: available, never pending."""
    return record(
        running,
        account,
        "refund",
        source=refund["id"],
        amount=-refund["amount"],
        currency=refund["currency"],
        description="REFUND FOR CHARGE",
        available_on=int(time.time()),
    )


def record_refund_failure(
    running: StripeStandin, account: str | None, refund: dict[str, Any]
) -> str:
    """A failed refund's money comes back to the balance."""
    return record(
        running,
        account,
        "refund_failure",
        source=refund["id"],
        amount=refund["amount"],
        currency=refund["currency"],
        description="REFUND FAILURE",
        available_on=int(time.time()),
    )


def transactions(running: StripeStandin, account: str | None) -> list[dict[str, Any]]:
    """The account's balance transactions, oldest first, pending ones made available first
    if their time has come."""
    make_due_available(running, account)
    return running.state.objects_of(account, TRANSACTION)


def make_due_available(
    running: StripeStandin, account: str | None, now: float | None = None
) -> int:
    """Every pending transaction whose ``available_on`` has passed (all of them when ``now``
    is infinite) becomes available; how many did."""
    now = time.time() if now is None else now
    made = 0
    with running.state.lock:
        for transaction in running.state.objects_of(account, TRANSACTION):
            if transaction["status"] == "pending" and transaction["available_on"] <= now:
                transaction["status"] = "available"
                transaction["available_on"] = min(transaction["available_on"], int(time.time()))
                running.state.put_object(account, transaction)
                made += 1
    return made


def payout_links(running: StripeStandin, account: str | None) -> dict[str, str]:
    """Transaction id → the payout that carried it."""
    found = running.state.get_object(account, PAYOUT_LINKS)
    return dict(found["links"]) if found else {}


def link_to_payout(
    running: StripeStandin, account: str | None, transaction_ids: list[str], payout_id: str
) -> None:
    links = payout_links(running, account)
    links.update(dict.fromkeys(transaction_ids, payout_id))
    running.state.put_object(
        account, {"id": PAYOUT_LINKS, "object": "standin.payout_links", "links": links}
    )


def unpaid_available(running: StripeStandin, account: str | None) -> list[dict[str, Any]]:
    """Available transactions no payout has carried yet, oldest first."""
    links = payout_links(running, account)
    return [
        t
        for t in transactions(running, account)
        if t["status"] == "available" and t["id"] not in links
    ]
