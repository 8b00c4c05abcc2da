"""What becomes of a refund after it is made: a ``pending`` one succeeds, and any that has
not already failed can fail (card refunds may fail even after ``succeeded``, as on Stripe).

Each change is sent as ``charge.refund.updated`` then ``refund.updated``; a failure also as
``refund.failed``, last. A failed refund's money comes back to the balance (a
``refund_failure`` transaction, the refund's ``failure_balance_transaction``) and the
charge's ``amount_refunded`` goes back down.
"""

from typing import Any

from sandbox.stripe import balance
from sandbox.stripe.events import originating_request, previous_attributes
from sandbox.stripe.runtime import StripeStandin

# Stripe's refund failure reasons.
FAILURE_REASONS = (
    "lost_or_stolen_card",
    "expired_or_canceled_card",
    "charge_for_pending_refund_disputed",
    "insufficient_funds",
    "declined",
    "merchant_request",
    "unknown",
)


class RefundRefused(Exception):
    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.message = message
        self.status = status


def find_refund(running: StripeStandin, refund_id: str) -> tuple[str | None, dict[str, Any]]:
    found = running.state.find_object(refund_id)
    if found is None or found[1].get("object") != "refund":
        raise RefundRefused(f"No refund {refund_id}.", 404)
    return found


def succeed(running: StripeStandin, refund_id: str) -> dict[str, Any]:
    with running.state.lock:
        account, refund = find_refund(running, refund_id)
        if refund["status"] != "pending":
            raise RefundRefused(f"Refund {refund_id} is {refund['status']}, not pending.")
        before = dict(refund)
        refund["status"] = "succeeded"
        return announce(running, account, refund, before)


def fail(running: StripeStandin, refund_id: str, reason: str = "expired_or_canceled_card"):
    if reason not in FAILURE_REASONS:
        raise RefundRefused(
            f"Unknown refund failure reason {reason}: one of {', '.join(FAILURE_REASONS)}.", 400
        )
    with running.state.lock:
        account, refund = find_refund(running, refund_id)
        if refund["status"] not in ("pending", "succeeded"):
            raise RefundRefused(f"Refund {refund_id} is {refund['status']}; it cannot fail.")
        before = dict(refund)
        refund.update(
            status="failed",
            failure_reason=reason,
            failure_balance_transaction=balance.record_refund_failure(running, account, refund),
        )
        give_back(running, account, refund)
        announce(running, account, refund, before)
        running.events.emit("refund.failed", refund, account, request=originating_request())
        return refund


def give_back(running: StripeStandin, account: str | None, refund: dict[str, Any]) -> None:
    """The charge no longer counts the failed refund as refunded."""
    charge = running.state.get_object(account, refund["charge"])
    if charge is None:
        return
    charge["amount_refunded"] -= refund["amount"]
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    running.state.put_object(account, charge)


def announce(
    running: StripeStandin, account: str | None, refund: dict[str, Any], before: dict[str, Any]
) -> dict[str, Any]:
    """Keep the refund, the copy in its charge's ``refunds`` too, and send the updates."""
    running.state.put_object(account, refund)
    charge = running.state.get_object(account, refund["charge"])
    if charge is not None:
        listed = charge["refunds"]["data"]
        charge["refunds"]["data"] = [refund if r["id"] == refund["id"] else r for r in listed]
        running.state.put_object(account, charge)
    previous = previous_attributes(before, refund)
    request = originating_request()
    running.events.emit("charge.refund.updated", refund, account, previous, request=request)
    running.events.emit("refund.updated", refund, account, previous, request=request)
    return refund
