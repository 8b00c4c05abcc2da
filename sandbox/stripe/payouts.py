"""Payouts: the connected account's available funds swept to its bank account, as Stripe's
automatic payouts do, and what becomes of them (``paid`` or ``failed``).

A payout carries every available balance transaction no payout has carried yet, one payout
per currency, for the sum of their nets, and leaves a ``payout`` transaction of minus that
sum; ``GET /v1/balance_transactions?payout=`` lists them all, its own included. Events:
``payout.created``; then ``payout.updated`` and ``payout.paid``, or ``payout.updated`` and
``payout.failed`` (a failed payout's money comes back as a ``payout_failure`` transaction,
which the next payout carries).
"""

import time
from typing import Any

from sandbox.stripe import balance
from sandbox.stripe.events import originating_request, previous_attributes
from sandbox.stripe.runtime import StripeStandin
from sandbox.stripe.store import new_id

PAYOUT = "payout"
BANK_ACCOUNT = "standin/bank_account"
DAY = 24 * 60 * 60
# Stripe's payout failure codes, with the message it gives for each.
FAILURES = {
    "account_closed": "The bank account has been closed.",
    "account_frozen": "The bank account has been frozen.",
    "bank_account_restricted": "The bank account has restrictions on either the type, or the "
    "number, of payouts allowed.",
    "could_not_process": "The bank could not process this payout.",
    "declined": "The bank has declined this transfer.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "invalid_account_number": "The routing number seems correct, but the account number is "
    "invalid.",
    "no_account": "The bank account details on file are probably incorrect. No bank account "
    "could be located with those details.",
}


class PayoutRefused(Exception):
    """Nothing to pay out, or a payout that cannot take this step."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def bank_account(running: StripeStandin, account: str | None) -> str:
    """The id of the account's bank account, made at its first payout."""
    found = running.state.get_object(account, BANK_ACCOUNT)
    if found is None:
        found = {"id": BANK_ACCOUNT, "object": "standin.bank_account", "bank": new_id("ba_")}
        running.state.put_object(account, found)
    return found["bank"]


def payout_object(
    running: StripeStandin, account: str | None, amount: int, currency: str, arrival_date: int
) -> dict[str, Any]:
    return {
        "id": new_id("po_"),
        "object": PAYOUT,
        "amount": amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": arrival_date,
        "automatic": True,
        "balance_transaction": None,
        "created": int(time.time()),
        "currency": currency,
        "description": "STRIPE PAYOUT",
        "destination": bank_account(running, account),
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": {},
        "method": "standard",
        "original_payout": None,
        "payout_method": None,
        "reconciliation_status": "completed",
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": None,
        "status": "in_transit",
        "trace_id": {"status": "pending", "value": None},
        "type": "bank_account",
    }


def emit(running: StripeStandin, account: str | None, event_type: str, payout: dict, before=None):
    previous = previous_attributes(before, payout) if before is not None else None
    running.events.emit(event_type, payout, account, previous, request=originating_request())


def pay_out(
    running: StripeStandin,
    account: str | None,
    arrival_date: int | None = None,
    failure: str | None = None,
) -> list[dict[str, Any]]:
    """Sweep the available funds now: a payout ``in_transit`` per currency, arriving at
    ``arrival_date`` (a day from now if not given), or at once ``paid`` when that is now or
    past, or ``failed`` with ``failure``'s code. Raises PayoutRefused when nothing is owed."""
    now = int(time.time())
    arrival = now + DAY if arrival_date is None else arrival_date
    made = []
    with running.state.lock:
        unpaid = balance.unpaid_available(running, account)
        for currency in sorted({t["currency"] for t in unpaid}):
            carried = [t for t in unpaid if t["currency"] == currency]
            amount = sum(t["net"] for t in carried)
            if amount > 0:
                made.append(start(running, account, carried, amount, currency, arrival))
        if not made:
            raise PayoutRefused("There is no available balance to pay out.")
        for payout in made:
            if failure is not None:
                fail(running, account, payout["id"], failure)
            elif arrival <= now:
                mark_paid(running, account, payout["id"])
        return [running.state.get_object(account, p["id"]) or p for p in made]


def start(
    running: StripeStandin,
    account: str | None,
    carried: list[dict[str, Any]],
    amount: int,
    currency: str,
    arrival: int,
) -> dict[str, Any]:
    payout = payout_object(running, account, amount, currency, arrival)
    payout["balance_transaction"] = balance.record(
        running,
        account,
        "payout",
        source=payout["id"],
        amount=-amount,
        currency=currency,
        description="STRIPE PAYOUT",
        available_on=int(time.time()),
    )
    carried_ids = [t["id"] for t in carried] + [payout["balance_transaction"]]
    balance.link_to_payout(running, account, carried_ids, payout["id"])
    running.state.put_object(account, payout)
    emit(running, account, "payout.created", payout)
    return payout


def payout_in(running: StripeStandin, account: str | None, payout_id: str) -> dict[str, Any]:
    found = running.state.get_object(account, payout_id)
    if found is None or found.get("object") != PAYOUT:
        raise PayoutRefused(f"No payout {payout_id}.")
    return found


def mark_paid(running: StripeStandin, account: str | None, payout_id: str) -> dict[str, Any]:
    """The bank received it: ``payout.updated`` then ``payout.paid``."""
    with running.state.lock:
        payout = payout_in(running, account, payout_id)
        if payout["status"] != "in_transit":
            raise PayoutRefused(f"Payout {payout_id} is {payout['status']}, not in_transit.")
        before = dict(payout, trace_id=dict(payout["trace_id"]))
        payout.update(status="paid", trace_id={"status": "unsupported", "value": None})
        payout["arrival_date"] = min(payout["arrival_date"], int(time.time()))
        running.state.put_object(account, payout)
        emit(running, account, "payout.updated", payout, before)
        emit(running, account, "payout.paid", payout)
        return payout


def fail(
    running: StripeStandin, account: str | None, payout_id: str, failure: str
) -> dict[str, Any]:
    """The bank sent it back (even after ``paid``, as Stripe allows): the money returns to
    the balance, ``payout.updated`` then ``payout.failed``."""
    if failure not in FAILURES:
        raise PayoutRefused(f"Unknown payout failure code {failure}: one of {', '.join(FAILURES)}.")
    with running.state.lock:
        payout = payout_in(running, account, payout_id)
        if payout["status"] not in ("in_transit", "paid"):
            raise PayoutRefused(f"Payout {payout_id} is {payout['status']}; it cannot fail.")
        before = dict(payout)
        returned = balance.record(
            running,
            account,
            "payout_failure",
            source=payout["id"],
            amount=payout["amount"],
            currency=payout["currency"],
            description="STRIPE PAYOUT FAILURE",
            available_on=int(time.time()),
        )
        payout.update(
            status="failed",
            failure_code=failure,
            failure_message=FAILURES[failure],
            failure_balance_transaction=returned,
        )
        running.state.put_object(account, payout)
        emit(running, account, "payout.updated", payout, before)
        emit(running, account, "payout.failed", payout)
        return payout


def arrive_due_payouts(running: StripeStandin, account: str | None) -> int:
    now = time.time()
    arrived = 0
    with running.state.lock:
        for payout in running.state.objects_of(account, PAYOUT):
            if payout["status"] == "in_transit" and payout["arrival_date"] <= now:
                mark_paid(running, account, payout["id"])
                arrived += 1
    return arrived


def run_payout_schedule(running: StripeStandin) -> None:
    """One round of the demo's schedule, for every test account: the last round's payouts
    arrive, pending funds become available, and what is available is paid out, to arrive by
    the next round."""
    arrival = int(time.time() + running.settings.payout_seconds)
    with running.state.lock:
        for account in running.state.accounts():
            arrive_due_payouts(running, account["id"])
            balance.make_due_available(running, account["id"], now=float("inf"))
            try:
                pay_out(running, account["id"], arrival_date=arrival)
            except PayoutRefused:
                continue
