"""Past payments on a connected account, as Checkout would have left them weeks ago: for a
demo whose pages should have something to show on its first start.

Each payment becomes a complete, paid Checkout Session with its PaymentIntent, card, charge
and balance transaction (Stripe's fee, funds available two days later), and its refunds with
theirs; or, for one that was never paid, a session that expired. Then weekly payouts, from the
oldest payment on, each sweeping what was available by then and arriving two days later.
Every object carries its time in the past. No events are made and no webhook is sent: this
happened before the platform was listening. A payment's ``key`` (vcpay's request key, in the
metadata) makes it once; a second call with the same keys makes nothing new.

The account is connected to the platform first, if it is not: it has been taking the
platform's payments all along.
"""

import time
from dataclasses import dataclass, field
from typing import Any

from sandbox.stripe import balance, checkout, payouts
from sandbox.stripe.cards import TEST_CARDS, CardDetails, TestCard
from sandbox.stripe.checkout_line_items import read_line_items
from sandbox.stripe.checkout_params import STORED_AS_GIVEN
from sandbox.stripe.payment_objects import (
    NULL_ADDRESS,
    card_payment_method,
    charge_object,
    payment_intent_object,
)
from sandbox.stripe.refunds import REFUND_REASONS, refund_destination
from sandbox.stripe.runtime import StripeStandin
from sandbox.stripe.store import new_id

DAY = 24 * 60 * 60
WEEK = 7 * DAY
PAYOUT_ARRIVAL = 2 * DAY
# How long before the payment the clinician asked for it, and how long Checkout gave.
ASKED_BEFORE = 5 * 60
SESSION_LIFETIME = 30 * 60
OUTCOMES = ("paid", "expired")


class HistoryRefused(ValueError):
    """The list of past payments does not read; nothing was made."""


@dataclass(frozen=True)
class PastRefund:
    amount: int
    created: int
    reason: str | None


@dataclass(frozen=True)
class PastPayment:
    key: str
    amount: int
    currency: str
    description: str
    email: str
    name: str
    created: int
    card: TestCard
    outcome: str = "paid"
    declined: TestCard | None = None  # a card refused before this one paid
    refunds: tuple[PastRefund, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)


# -- reading the list -----------------------------------------------------------------------


def _card(digits: Any, succeeds: bool) -> TestCard:
    """A test card named by its number or the start of it ("4242", "5555")."""
    text = str(digits or "4242").replace(" ", "")
    for card in TEST_CARDS:
        plain = not card.three_d_secure
        if plain and card.number.startswith(text) and (card.decline is None) is succeeds:
            return card
    raise HistoryRefused(f"No {'succeeding' if succeeds else 'declined'} test card {text}.")


def _whole(item: dict[str, Any], name: str, low: int = 1) -> int:
    value = item.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise HistoryRefused(f"'{name}' must be a whole number of at least {low}.")
    return value


def _text(item: dict[str, Any], name: str, default: str | None = None) -> str:
    value = item.get(name, default)
    if not isinstance(value, str) or not value.strip():
        raise HistoryRefused(f"'{name}' must be a non-empty string.")
    return value.strip()


def _refund(item: Any, payment: dict[str, Any]) -> PastRefund:
    if not isinstance(item, dict):
        raise HistoryRefused("Each refund is an object.")
    reason = item.get("reason")
    if reason is not None and reason not in REFUND_REASONS:
        raise HistoryRefused(f"A refund's 'reason' is one of {', '.join(REFUND_REASONS)}.")
    created = _whole(item, "created")
    if created < payment["created"]:
        raise HistoryRefused("A refund cannot come before its payment.")
    return PastRefund(_whole(item, "amount"), created, reason)


def read_payment(item: Any, now: int) -> PastPayment:
    if not isinstance(item, dict):
        raise HistoryRefused("Each payment is an object.")
    created = _whole(item, "created")
    if created >= now:
        raise HistoryRefused("A past payment's 'created' must be in the past.")
    outcome = item.get("outcome", "paid")
    if outcome not in OUTCOMES:
        raise HistoryRefused(f"'outcome' is one of {', '.join(OUTCOMES)}.")
    refunds = tuple(_refund(r, item) for r in item.get("refunds") or ())
    amount = _whole(item, "amount", 50)
    if sum(r.amount for r in refunds) > amount or (refunds and outcome != "paid"):
        raise HistoryRefused(f"Payment {item.get('key')}: refunds exceed what was paid.")
    if any(r.created >= now for r in refunds):
        raise HistoryRefused("A past refund's 'created' must be in the past.")
    metadata = item.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise HistoryRefused("'metadata' is an object of strings.")
    declined = item.get("declined_card")
    return PastPayment(
        key=_text(item, "key"),
        amount=amount,
        currency=_text(item, "currency", "aud").lower(),
        description=_text(item, "description"),
        email=_text(item, "email"),
        name=_text(item, "name"),
        created=created,
        card=_card(item.get("card"), succeeds=True),
        outcome=outcome,
        declined=_card(declined, succeeds=False) if declined else None,
        refunds=tuple(sorted(refunds, key=lambda r: r.created)),
        metadata={str(k): str(v) for k, v in metadata.items()},
    )


def read_history(body: Any, now: int) -> list[PastPayment]:
    items = body.get("payments") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise HistoryRefused("The body is {'payments': [...]}.")
    payments = [read_payment(item, now) for item in items]
    if len({p.key for p in payments}) != len(payments):
        raise HistoryRefused("Each payment's 'key' must be different.")
    return sorted(payments, key=lambda p: p.created)


# -- the objects, each dated in the past ----------------------------------------------------


class PastWriter:
    """Writes one account's past objects into the store; the caller holds ``changing()``,
    so the state file is written once, whatever the number of objects."""

    def __init__(self, running: StripeStandin, account: str, base_url: str):
        self.running = running
        self.account = account
        self.base_url = base_url

    def keep(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.running.state.objects.put(self.account, obj)

    def session(self, payment: PastPayment) -> dict[str, Any]:
        """The session as vcpay's create call made it, the clinician's few minutes earlier."""
        asked = payment.created - ASKED_BEFORE
        session_id = new_id("cs_test_a1", 56)
        metadata = {**payment.metadata, "payment_request": payment.key}
        price = {
            "currency": payment.currency,
            "unit_amount": payment.amount,
            "product_data": {"name": payment.description},
        }
        items = read_line_items({"line_items": [{"quantity": 1, "price_data": price}]}, asked)
        session = checkout.session_object(
            session_id,
            created=asked,
            currency=payment.currency,
            amount=payment.amount,
            expires_at=asked + SESSION_LIFETIME,
            success_url=f"{self.base_url}/done?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=None,
            customer_email=None,
            metadata=metadata,
            client_reference_id=payment.key,
            ui_mode="hosted_page",
            url=f"{self.base_url}/c/pay/{session_id}",
            stored=dict.fromkeys(STORED_AS_GIVEN),
        )
        intent_data = {"description": payment.description, "metadata": metadata}
        self.keep(checkout.extras_entry(session_id, items, intent_data))
        return session

    def payment_intent(self, session: dict[str, Any], payment: PastPayment) -> dict[str, Any]:
        intent_data = checkout.extras(self.running, self.account, session["id"])
        payment_intent = payment_intent_object(
            session, intent_data["payment_intent_data"], self.running
        )
        payment_intent.update(created=session["created"] + 60, receipt_email=payment.email)
        session["payment_intent"] = payment_intent["id"]
        return payment_intent

    def charge(
        self,
        payment_intent: dict[str, Any],
        payment: PastPayment,
        card: TestCard,
        created: int,
    ) -> dict[str, Any]:
        details = CardDetails(card.number, 12, 2030, "123", payment.name, payment.email)
        method = card_payment_method(details)
        method["created"] = created
        self.keep(method)
        charge = charge_object(payment_intent, method, card.decline, self.running, self.account)
        receipt_url = f"{self.base_url}/receipts/payment/{charge['id']}"
        charge.update(created=created, receipt_url=receipt_url)
        payment_intent["payment_method"] = method["id"]
        payment_intent["latest_charge"] = charge["id"]
        if card.decline is None:
            charge["balance_transaction"] = self.charge_transaction(charge, created)
        return self.keep(charge)

    def charge_transaction(self, charge: dict[str, Any], created: int) -> str:
        transaction = balance.transaction_object(
            "charge",
            source=charge["id"],
            amount=charge["amount"],
            currency=charge["currency"],
            description=charge["description"],
            available_on=int(created + self.running.settings.available_after_seconds),
            details=balance.fee_details(charge, self.running.settings.platform_name),
        )
        transaction["created"] = created
        return self.keep(transaction)["id"]

    def refund(self, charge: dict[str, Any], past: PastRefund) -> dict[str, Any]:
        refund = {
            "id": new_id("re_"),
            "object": "refund",
            "amount": past.amount,
            "balance_transaction": None,
            "charge": charge["id"],
            "created": past.created,
            "currency": charge["currency"],
            "customer": None,
            "customer_account": None,
            "destination_details": refund_destination(charge),
            "metadata": {},
            "payment_intent": charge["payment_intent"],
            "payment_method": charge["payment_method"],
            "reason": past.reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": "succeeded",
            "transfer_reversal": None,
        }
        transaction = balance.transaction_object(
            "refund",
            source=refund["id"],
            amount=-past.amount,
            currency=charge["currency"],
            description="REFUND FOR CHARGE",
            available_on=past.created,
        )
        transaction["created"] = past.created
        refund["balance_transaction"] = self.keep(transaction)["id"]
        charge["amount_refunded"] += past.amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        charge["refunds"]["data"] = [refund, *charge["refunds"]["data"]]
        return self.keep(refund)

    def paid(self, payment: PastPayment) -> dict[str, Any]:
        session = self.session(payment)
        payment_intent = self.payment_intent(session, payment)
        declined = None
        if payment.declined is not None:
            declined = self.charge(payment_intent, payment, payment.declined, payment.created - 90)
        charge = self.charge(payment_intent, payment, payment.card, payment.created)
        payment_intent.update(
            status="succeeded", amount_received=payment.amount, latest_charge=charge["id"]
        )
        session.update(status="complete", payment_status="paid", url=None)
        session["customer_details"] = _customer_details(payment)
        for past in payment.refunds:
            self.refund(charge, past)
        self.keep(charge)
        self.keep(payment_intent)
        self.keep(session)
        return _answer(self.running, self.account, session, charge, declined)

    def expired(self, payment: PastPayment) -> dict[str, Any]:
        session = self.session(payment)
        session.update(status="expired", url=None)
        self.keep(session)
        return _answer(self.running, self.account, session, None, None)


def _customer_details(payment: PastPayment) -> dict[str, Any]:
    return {
        "address": {**NULL_ADDRESS, "country": "AU"},
        "business_name": None,
        "email": payment.email,
        "individual_name": None,
        "name": payment.name,
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def _answer(
    running: StripeStandin,
    account: str,
    session: dict[str, Any],
    charge: dict[str, Any] | None,
    declined: dict[str, Any] | None,
) -> dict[str, Any]:
    """What vcpay needs to write its side of one payment."""
    charge = charge or {}
    card = charge.get("payment_method_details", {}).get("card", {})
    transaction = running.state.objects.get(account, charge.get("balance_transaction") or "")
    refunds = sorted(charge.get("refunds", {}).get("data", []), key=lambda r: r["created"])
    payer = session.get("customer_details") or {}
    description = checkout.line_items(running, account, session["id"])["data"][0]["description"]
    return {
        "status": "paid" if charge else session["status"],
        "amount": session["amount_total"],
        "currency": session["currency"],
        "description": description,
        "email": payer.get("email"),
        "name": payer.get("name"),
        "session_id": session["id"],
        "requested_at": session["created"],
        "expires_at": session["expires_at"],
        "payment_intent_id": session["payment_intent"],
        "charge_id": charge.get("id"),
        "paid_at": charge.get("created"),
        "receipt_number": charge.get("receipt_number"),
        "card_brand": card.get("brand"),
        "card_last4": card.get("last4"),
        "fee": transaction["fee"] if transaction else None,
        "net": transaction["net"] if transaction else None,
        "declined": declined["failure_message"] if declined else None,
        "declined_at": declined["created"] if declined else None,
        "refunds": [
            {"id": r["id"], "amount": r["amount"], "created": r["created"], "reason": r["reason"]}
            for r in refunds
        ],
    }


# -- weekly payouts -------------------------------------------------------------------------


def _uncarried(running: StripeStandin, account: str, before: int) -> list[dict[str, Any]]:
    links = balance.payout_links(running, account)
    return [
        t
        for t in running.state.objects.of_type(account, balance.TRANSACTION)
        if t["id"] not in links and t["created"] < before and t["available_on"] <= before
    ]


def pay_out_weekly(running: StripeStandin, account: str, since: int, now: int) -> list[dict]:
    """A payout every seven days from ``since`` up to now, each carrying what was available
    by its day and no payout had carried; paid two days later (in transit if that is still
    to come)."""
    made = []
    at = since + WEEK
    while at < now:
        carried = _uncarried(running, account, at)
        by_currency: dict[str, list[dict[str, Any]]] = {}
        for transaction in carried:
            by_currency.setdefault(transaction["currency"], []).append(transaction)
        for currency, transactions in sorted(by_currency.items()):
            amount = sum(t["net"] for t in transactions)
            if amount > 0:
                made.append(_past_payout(running, account, transactions, amount, currency, at))
        at += WEEK
    return made


def _past_payout(running, account, carried, amount, currency, at) -> dict[str, Any]:
    arrival = at + PAYOUT_ARRIVAL
    payout = payouts.payout_object(running, account, amount, currency, arrival)
    payout["created"] = at
    if arrival <= time.time():
        payout.update(status="paid", trace_id={"status": "unsupported", "value": None})
    transaction = balance.transaction_object(
        "payout",
        source=payout["id"],
        amount=-amount,
        currency=currency,
        description="STRIPE PAYOUT",
        available_on=at,
    )
    transaction["created"] = at
    payout["balance_transaction"] = running.state.objects.put(account, transaction)["id"]
    carried_ids = [t["id"] for t in carried] + [payout["balance_transaction"]]
    balance.link_to_payout(running, account, carried_ids, payout["id"])
    return running.state.objects.put(account, payout)


# -- the whole history ----------------------------------------------------------------------


def existing_by_key(running: StripeStandin, account: str) -> dict[str, dict[str, Any]]:
    """The account's sessions by the payment request key their metadata names."""
    return {
        s["metadata"]["payment_request"]: s
        for s in running.state.objects.of_type(account, checkout.SESSION)
        if (s.get("metadata") or {}).get("payment_request")
    }


def described(running: StripeStandin, account: str, session: dict[str, Any]) -> dict[str, Any]:
    """The answer for a session made before (a second call with the same key)."""
    store = running.state.objects
    payment_intent = store.get(account, session["payment_intent"] or "") or {}
    charges = [
        c
        for c in store.of_type(account, "charge")
        if c["payment_intent"] == payment_intent.get("id")
    ]
    paid = next((c for c in charges if c["status"] == "succeeded"), None)
    declined = next((c for c in charges if c["status"] == "failed"), None)
    return _answer(running, account, session, paid, declined)


def write_history(
    running: StripeStandin, account: str, payments: list[PastPayment], base_url: str
) -> dict[str, Any]:
    """Make what is missing of ``payments`` (oldest first) and the weekly payouts; the
    answer names every object, per key, new or made before."""
    now = int(time.time())
    state = running.state
    with state.changing():
        if not state.is_connected(account):
            state.connect(account, "read_write")
        writer = PastWriter(running, account, base_url)
        before = existing_by_key(running, account)
        answers = {}
        for payment in payments:
            if payment.key in before:
                answers[payment.key] = described(running, account, before[payment.key])
            elif payment.outcome == "paid":
                answers[payment.key] = writer.paid(payment)
            else:
                answers[payment.key] = writer.expired(payment)
        new = [p for p in payments if p.key not in before]
        # Payouts follow new payments only: a call that adds nothing pays nothing out.
        made = pay_out_weekly(running, account, payments[0].created, now) if new else []
        state.objects.order_by_created(account)
    return {
        "account": account,
        "payments": answers,
        "payouts": [_payout_answer(p) for p in made],
    }


def _payout_answer(payout: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": payout["id"],
        "amount": payout["amount"],
        "currency": payout["currency"],
        "created": payout["created"],
        "arrival_date": payout["arrival_date"],
        "status": payout["status"],
    }
