"""Stripe's payouts and balance transactions read into vcpay's values (``PayoutSummary``,
``BalanceEntry``): the Stripe adapter's payout reading, apart from its payment calls."""

from typing import Any

from vcpay.integrations.stripe_values import BalanceEntry, PayoutSummary

PAGE_SIZE = 100  # Stripe's largest page


def read_payout(data: dict[str, Any]) -> PayoutSummary:
    return PayoutSummary(
        id=data["id"],
        amount=int(data.get("amount") or 0),
        currency=str(data.get("currency") or ""),
        status=str(data.get("status") or "pending"),
        arrival_date=int(data.get("arrival_date") or data.get("created") or 0),
        created=int(data.get("created") or 0),
        failure_code=str(data.get("failure_code") or ""),
        failure_message=str(data.get("failure_message") or ""),
    )


def _id_of(value: Any) -> str | None:
    """An expandable field: its id, whether Stripe gave the id or the object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _payment_of(source: Any) -> tuple[str | None, str | None]:
    """The charge and payment intent a transaction's expanded source is about: a charge's
    own, or those of the charge a refund gave money back from."""
    if not isinstance(source, dict):
        return None, None
    kind = source.get("object")
    if kind == "charge":
        return _id_of(source.get("id")), _id_of(source.get("payment_intent"))
    if kind == "refund":
        return _id_of(source.get("charge")), _id_of(source.get("payment_intent"))
    return None, None


def read_balance_entry(data: dict[str, Any]) -> BalanceEntry:
    source = data.get("source")
    charge_id, payment_intent_id = _payment_of(source)
    return BalanceEntry(
        id=data["id"],
        type=str(data.get("type") or ""),
        reporting_category=str(data.get("reporting_category") or ""),
        amount=int(data.get("amount") or 0),
        fee=int(data.get("fee") or 0),
        net=int(data.get("net") or 0),
        currency=str(data.get("currency") or ""),
        source_id=_id_of(source) or "",
        description=str(data.get("description") or ""),
        created=int(data.get("created") or 0),
        charge_id=charge_id,
        payment_intent_id=payment_intent_id,
    )


def charge_fee(charge: Any) -> int | None:
    """Stripe's fee for a charge whose balance transaction was expanded; None when absent."""
    if not isinstance(charge, dict):
        return None
    transaction = charge.get("balance_transaction")
    if not isinstance(transaction, dict) or transaction.get("fee") is None:
        return None
    return int(transaction["fee"])
