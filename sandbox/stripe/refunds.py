"""Refunds (``POST /v1/refunds``, and the Dashboard's Refund): of a charge, named by itself or
by its PaymentIntent, whole or in part; ``succeeded`` at once, or ``pending`` where the
account's refunds are set to start so (``refund_outcomes``); announced with
``charge.refunded`` then ``refund.created``. The money leaves the balance at once: a
``refund`` balance transaction, whatever the refund's status."""

import time
from typing import Any

from sandbox.stripe import balance
from sandbox.stripe.errors import InvalidParameter, InvalidRequest, invalid_integer, no_such
from sandbox.stripe.events import originating_request, previous_attributes
from sandbox.stripe.money import formatted
from sandbox.stripe.runtime import StripeStandin
from sandbox.stripe.store import new_id

REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
# How new refunds start on each account: Stripe's test mode refunds cards at once; a control
# makes them wait (``pending``) until a test decides.
REFUND_MODE = "standin/refund_mode"


def refunds_start(running: StripeStandin, account: str | None) -> str:
    found = running.state.get_object(account, REFUND_MODE)
    return found["status"] if found else "succeeded"


def set_refunds_start(running: StripeStandin, account: str | None, status: str) -> None:
    running.state.put_object(
        account, {"id": REFUND_MODE, "object": "standin.refund_mode", "status": status}
    )


def refundable_charge(
    running: StripeStandin, account: str | None, params: dict[str, Any]
) -> dict[str, Any]:
    """The charge a refund call names, by ``charge`` or by ``payment_intent``."""
    state = running.state
    pi_id, charge_id = params.get("payment_intent"), params.get("charge")
    if not pi_id and not charge_id:
        raise InvalidParameter(
            "One of the following params should be provided for this request: charge or "
            "payment_intent.",
            param="payment_intent",
            code="parameter_missing",
        )
    if pi_id:
        payment_intent = state.get_object(account, str(pi_id))
        if payment_intent is None or payment_intent.get("object") != "payment_intent":
            raise no_such("payment_intent", str(pi_id), param="payment_intent")
        if payment_intent["status"] != "succeeded":
            raise InvalidRequest(
                f"This PaymentIntent ({pi_id}) does not have a successful charge to refund.",
                param="payment_intent",
            )
        charge_id = charge_id or payment_intent["latest_charge"]
        if charge_id != payment_intent["latest_charge"]:
            raise InvalidParameter(
                f"The charge {charge_id} does not belong to the PaymentIntent {pi_id}.",
                param="charge",
            )
    charge = state.get_object(account, str(charge_id))
    if charge is None or charge.get("object") != "charge":
        raise no_such("charge", str(charge_id), param="charge")
    if charge["status"] != "succeeded":
        raise InvalidRequest(
            f"Charge {charge_id} has not succeeded, so it cannot be refunded.", param="charge"
        )
    return charge


def refund_amount(params: dict[str, Any], charge: dict[str, Any]) -> int:
    remaining = charge["amount"] - charge["amount_refunded"]
    if charge["refunded"] or remaining <= 0:
        raise InvalidRequest(
            f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    if params.get("amount") is None:
        return remaining
    try:
        amount = int(str(params["amount"]))
    except ValueError:
        raise invalid_integer(params["amount"], "amount") from None
    if amount < 1:
        raise InvalidParameter("This value must be greater than or equal to 1.", param="amount")
    if amount > remaining:
        currency = charge["currency"]
        raise InvalidRequest(
            f"Refund amount ({formatted(amount, currency)}) is greater than unrefunded amount "
            f"on charge ({formatted(remaining, currency)})",
            param="amount",
            code="amount_too_large",
        )
    return amount


def refund(running: StripeStandin, account: str | None, params: dict[str, Any]) -> dict:
    """``POST /v1/refunds``: the charge shows it at once, whether the refund succeeded or is
    pending, and ``charge.refunded`` then ``refund.created`` are sent."""
    reason = params.get("reason")
    if reason is not None and reason not in REFUND_REASONS:
        raise InvalidParameter(
            f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}", param="reason"
        )
    metadata = params.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidParameter("Invalid hash", param="metadata")
    with running.state.lock:
        charge = refundable_charge(running, account, params)
        amount = refund_amount(params, charge)
        refund_object = {
            "id": new_id("re_"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": charge["id"],
            "created": int(time.time()),
            "currency": charge["currency"],
            "customer": None,
            "customer_account": None,
            "destination_details": refund_destination(charge),
            "metadata": {k: str(v) for k, v in metadata.items() if v != ""},
            "payment_intent": charge["payment_intent"],
            "payment_method": charge["payment_method"],
            "reason": reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": refunds_start(running, account),
            "transfer_reversal": None,
        }
        refund_object["balance_transaction"] = balance.record_refund(
            running, account, refund_object
        )
        running.state.put_object(account, refund_object)
        before = dict(charge)
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        refunds = charge["refunds"]
        refunds["data"] = [refund_object, *refunds["data"]]
        running.state.put_object(account, charge)
        request = originating_request()
        previous = previous_attributes(before, charge)
        previous.pop("refunds", None)
        running.events.emit("charge.refunded", charge, account, previous, request=request)
        running.events.emit("refund.created", refund_object, account, request=request)
        return refund_object


def refund_destination(charge: dict[str, Any]) -> dict[str, Any]:
    kind = charge["payment_method_details"]["type"]
    if kind != "card":
        return {"type": kind, kind: {}}
    return {
        "card": {
            "reference": None,
            "reference_status": "pending",
            "reference_type": "acquirer_reference_number",
            "type": "refund",
        },
        "type": "card",
    }
