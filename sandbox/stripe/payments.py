"""Paying a Checkout Session, and refunding: the PaymentIntent, PaymentMethod, Charge and
Refund objects on the connected account, and the events Stripe sends as a payment goes.

The pay page and the control API both call ``pay_by_card``, ``authenticate``,
``pay_by_debit`` and ``settle``, so a benchmark without a browser takes the same path as a
person. Every step runs under the state lock: a session cannot be paid while it expires.

Event order for a card that succeeds: ``payment_intent.created`` (first attempt only),
``charge.succeeded``, ``payment_intent.succeeded``, ``checkout.session.completed``. A decline:
``charge.failed``, ``payment_intent.payment_failed``, and the session stays open.
"""

import secrets
import time
from dataclasses import dataclass
from typing import Any

from sandbox.stripe.accounts import display_name
from sandbox.stripe.cards import (
    AUTHENTICATION_FAILED,
    CardDetails,
    Decline,
    PayerDetails,
    test_card,
)
from sandbox.stripe.checkout import extras, session_in
from sandbox.stripe.errors import InvalidParameter, InvalidRequest, invalid_integer, no_such
from sandbox.stripe.events import originating_request, previous_attributes
from sandbox.stripe.money import formatted
from sandbox.stripe.runtime import StripeStandin
from sandbox.stripe.store import new_id

NULL_ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}
DEBIT_FAILURE = Decline(
    "debit_not_authorized",
    None,
    "The customer's bank account could not be debited: the debit was not authorised.",
    "debit_not_authorized",
)
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")


class PaymentRefused(Exception):
    """The session cannot take this step (it is expired or complete, or nothing waits)."""

    def __init__(self, message: str, session: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.session = session


@dataclass
class Attempt:
    """What one payment step came to, and where the person goes next."""

    outcome: str  # succeeded | declined | requires_action | processing | failed
    session: dict[str, Any]
    payment_intent: dict[str, Any]
    next_url: str | None = None
    error: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "error": self.error,
            "next_url": self.next_url,
            "session": self.session,
            "payment_intent": self.payment_intent,
        }


def success_url(session: dict[str, Any]) -> str:
    return session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])


def digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


class Payment:
    """One step of paying one session, under the state lock; it keeps and announces."""

    def __init__(self, running: StripeStandin, account: str | None, base_url: str):
        self.running = running
        self.state = running.state
        self.account = account
        self.base_url = base_url

    def emit(
        self, event_type: str, obj: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> None:
        self.running.events.emit(
            event_type, obj, self.account, previous, request=originating_request()
        )

    def keep(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.state.put_object(self.account, obj)

    def get(self, object_id: str | None) -> dict[str, Any] | None:
        return self.state.get_object(self.account, object_id) if object_id else None

    # -- the session and its PaymentIntent ----------------------------------------------------

    def open_session(self, session_id: str) -> dict[str, Any]:
        session = session_in(self.running, self.account, session_id)
        if session["status"] != "open":
            raise PaymentRefused(f"This Checkout Session is {session['status']}.", session)
        return session

    def payment_intent_for(self, session: dict[str, Any]) -> dict[str, Any]:
        """The session's PaymentIntent, made at the first attempt to pay."""
        existing = self.get(session["payment_intent"])
        if existing is not None:
            return existing
        intent_data = extras(self.running, self.account, session["id"])["payment_intent_data"]
        payment_intent = payment_intent_object(session, intent_data, self.running)
        self.keep(payment_intent)
        session["payment_intent"] = payment_intent["id"]
        self.keep(session)
        self.emit("payment_intent.created", payment_intent)
        return payment_intent

    def complete(self, session: dict[str, Any], method: dict[str, Any], paid: bool) -> None:
        billing = method["billing_details"]
        session.update(
            status="complete",
            payment_status="paid" if paid else "unpaid",
            url=None,
            customer_details={
                "address": {**NULL_ADDRESS, "country": "AU"},
                "business_name": None,
                "email": billing["email"],
                "individual_name": None,
                "name": billing["name"],
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            },
        )
        self.keep(session)
        self.emit("checkout.session.completed", session)

    # -- outcomes -----------------------------------------------------------------------------

    def charge(
        self,
        payment_intent: dict[str, Any],
        method: dict[str, Any],
        decline: Decline | None,
        status: str | None = None,
    ) -> dict[str, Any]:
        charge = charge_object(payment_intent, method, decline, self.running, self.account)
        charge["receipt_url"] = f"{self.base_url}/receipts/payment/{charge['id']}"
        if status == "pending":
            charge.update(status="pending", paid=False, balance_transaction=None, outcome=None)
            charge["receipt_number"] = None
        self.keep(charge)
        self.emit(f"charge.{charge['status']}", charge)
        return charge

    def fail(
        self,
        payment_intent: dict[str, Any],
        method: dict[str, Any],
        decline: Decline,
        charge: dict[str, Any] | None,
    ) -> dict[str, Any]:
        error = {
            "charge": charge["id"] if charge else None,
            "code": decline.code,
            "decline_code": decline.decline_code,
            "doc_url": f"https://stripe.com/docs/error-codes/{decline.code.replace('_', '-')}",
            "message": decline.message,
            "payment_method": method,
            "type": "card_error",
        }
        if decline.decline_code is None:
            del error["decline_code"]
        payment_intent.update(
            status="requires_payment_method",
            last_payment_error=error,
            payment_method=None,
            next_action=None,
        )
        if charge is not None:
            payment_intent["latest_charge"] = charge["id"]
        self.keep(payment_intent)
        self.emit("payment_intent.payment_failed", payment_intent)
        return error

    def succeed(self, payment_intent: dict[str, Any], charge: dict[str, Any]) -> None:
        payment_intent.update(
            status="succeeded",
            amount_received=payment_intent["amount"],
            latest_charge=charge["id"],
            last_payment_error=None,
            next_action=None,
        )
        self.keep(payment_intent)
        self.emit("payment_intent.succeeded", payment_intent)

    def attempt_charge(
        self,
        session: dict[str, Any],
        payment_intent: dict[str, Any],
        method: dict[str, Any],
        decline: Decline | None,
        authenticated: bool = False,
    ) -> Attempt:
        payment_intent["payment_method"] = method["id"]
        charge = self.charge(payment_intent, method, decline)
        if authenticated:
            charge["payment_method_details"]["card"]["three_d_secure"] = three_d_secure()
            self.keep(charge)
        if decline is not None:
            error = self.fail(payment_intent, method, decline, charge)
            return Attempt("declined", session, payment_intent, error=error)
        self.succeed(payment_intent, charge)
        self.complete(session, method, paid=True)
        return Attempt("succeeded", session, payment_intent, next_url=success_url(session))

    def require_action(
        self, session: dict[str, Any], payment_intent: dict[str, Any], method: dict[str, Any]
    ) -> Attempt:
        url = f"{self.base_url}/c/pay/{session['id']}/authenticate/{payment_intent['id']}"
        payment_intent.update(
            status="requires_action",
            payment_method=method["id"],
            next_action={
                "type": "redirect_to_url",
                "redirect_to_url": {"return_url": success_url(session), "url": url},
            },
        )
        self.keep(payment_intent)
        self.emit("payment_intent.requires_action", payment_intent)
        return Attempt("requires_action", session, payment_intent, next_url=url)


def pay_by_card(
    running: StripeStandin,
    account: str | None,
    session_id: str,
    card: CardDetails,
    base_url: str,
    authenticate: bool | None = None,
) -> Attempt:
    """A card typed into the pay page. A 3-D Secure card waits for ``authenticate`` unless
    it is given (True completes the challenge, False fails it)."""
    step = Payment(running, account, base_url)
    with running.state.lock:
        session = step.open_session(session_id)
        payment_intent = step.payment_intent_for(session)
        payment_intent["receipt_email"] = receipt_email(running, account, session, card.email)
        method = step.keep(card_payment_method(card))
        behaviour = test_card(card.fingerprint)
        if behaviour.three_d_secure:
            if authenticate is None:
                return step.require_action(session, payment_intent, method)
            if not authenticate:
                error = step.fail(payment_intent, method, AUTHENTICATION_FAILED, None)
                return Attempt("declined", session, payment_intent, error=error)
        return step.attempt_charge(
            session, payment_intent, method, behaviour.decline, behaviour.three_d_secure
        )


def authenticate(
    running: StripeStandin,
    account: str | None,
    session_id: str,
    payment_intent_id: str,
    completed: bool,
    base_url: str,
) -> Attempt:
    """The person's answer on the 3-D Secure page."""
    step = Payment(running, account, base_url)
    with running.state.lock:
        session = step.open_session(session_id)
        payment_intent = step.get(payment_intent_id)
        if (
            payment_intent is None
            or session["payment_intent"] != payment_intent_id
            or payment_intent["status"] != "requires_action"
        ):
            raise PaymentRefused("This payment is not waiting for authentication.", session)
        method = step.get(payment_intent["payment_method"]) or {}
        if not completed:
            error = step.fail(payment_intent, method, AUTHENTICATION_FAILED, None)
            return Attempt("declined", session, payment_intent, error=error)
        decline = test_card(method["card"]["fingerprint"]).decline
        return step.attempt_charge(session, payment_intent, method, decline, authenticated=True)


def pay_by_debit(
    running: StripeStandin,
    account: str | None,
    session_id: str,
    payer: PayerDetails,
    base_url: str,
) -> Attempt:
    """A delayed payment method (BECS Direct Debit): the session completes unpaid, the
    PaymentIntent is ``processing``, and ``settle`` decides later."""
    step = Payment(running, account, base_url)
    with running.state.lock:
        session = step.open_session(session_id)
        payment_intent = step.payment_intent_for(session)
        payment_intent["receipt_email"] = receipt_email(running, account, session, payer.email)
        method = step.keep(debit_payment_method(payer))
        payment_intent["payment_method"] = method["id"]
        charge = step.charge(payment_intent, method, None, status="pending")
        payment_intent.update(status="processing", latest_charge=charge["id"])
        step.keep(payment_intent)
        step.emit("payment_intent.processing", payment_intent)
        step.complete(session, method, paid=False)
        return Attempt("processing", session, payment_intent, next_url=success_url(session))


def settle(
    running: StripeStandin, account: str | None, session_id: str, succeeded: bool, base_url: str
) -> Attempt:
    """The bank's answer to a delayed payment: ``checkout.session.async_payment_*``."""
    step = Payment(running, account, base_url)
    with running.state.lock:
        session = session_in(running, account, session_id)
        payment_intent = step.get(session["payment_intent"])
        if (
            session["status"] != "complete"
            or payment_intent is None
            or payment_intent["status"] != "processing"
        ):
            raise PaymentRefused("This Checkout Session has no delayed payment to settle.", session)
        charge = step.get(payment_intent["latest_charge"]) or {}
        method = step.get(payment_intent["payment_method"]) or {}
        if succeeded:
            charge.update(
                status="succeeded",
                paid=True,
                balance_transaction=new_id("txn_"),
                outcome=outcome(None),
                receipt_number=f"{digits(4)}-{digits(4)}",
            )
            step.keep(charge)
            step.emit("charge.succeeded", charge)
            step.succeed(payment_intent, charge)
            session["payment_status"] = "paid"
            step.keep(session)
            step.emit("checkout.session.async_payment_succeeded", session)
            return Attempt("succeeded", session, payment_intent)
        charge.update(
            status="failed",
            failure_code=DEBIT_FAILURE.code,
            failure_message=DEBIT_FAILURE.message,
            amount_captured=0,
            captured=False,
            outcome=outcome(DEBIT_FAILURE),
        )
        step.keep(charge)
        step.emit("charge.failed", charge)
        error = step.fail(payment_intent, method, DEBIT_FAILURE, charge)
        step.emit("checkout.session.async_payment_failed", session)
        return Attempt("failed", session, payment_intent, error=error)


def receipt_email(
    running: StripeStandin, account: str | None, session: dict[str, Any], email: str
) -> str:
    intent_data = extras(running, account, session["id"])["payment_intent_data"]
    return intent_data.get("receipt_email") or email


# -- objects -----------------------------------------------------------------------------------


def payment_intent_object(
    session: dict[str, Any], intent_data: dict[str, Any], running: StripeStandin
) -> dict[str, Any]:
    payment_intent_id = new_id("pi_")
    return {
        "id": payment_intent_id,
        "object": "payment_intent",
        "amount": session["amount_total"],
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": running.settings.client_id,
        "application_fee_amount": intent_data.get("application_fee_amount"),
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{payment_intent_id}_secret_{new_id('', 25)}",
        "confirmation_method": "automatic",
        "created": int(time.time()),
        "currency": session["currency"],
        "customer": None,
        "customer_account": None,
        "description": intent_data.get("description"),
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": dict(intent_data.get("metadata") or {}),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": intent_data.get("statement_descriptor"),
        "statement_descriptor_suffix": intent_data.get("statement_descriptor_suffix"),
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": intent_data.get("transfer_group"),
    }


def billing_details(name: str, email: str) -> dict[str, Any]:
    return {
        "address": dict(NULL_ADDRESS),
        "email": email,
        "name": name,
        "phone": None,
        "tax_id": None,
    }


def card_payment_method(card: CardDetails) -> dict[str, Any]:
    return {
        "id": new_id("pm_"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing_details(card.name, card.email),
        "card": {
            "brand": card.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "unchecked",
            },
            "country": "US",
            "display_brand": card.brand,
            "exp_month": card.exp_month,
            "exp_year": card.exp_year,
            "fingerprint": card.fingerprint,
            "funding": "credit",
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "wallet": None,
        },
        "created": int(time.time()),
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def debit_payment_method(payer: PayerDetails) -> dict[str, Any]:
    return {
        "id": new_id("pm_"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "au_becs_debit": {"bsb_number": "000000", "fingerprint": new_id("", 16), "last4": "3456"},
        "billing_details": billing_details(payer.name, payer.email),
        "created": int(time.time()),
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": "au_becs_debit",
    }


def three_d_secure() -> dict[str, Any]:
    return {
        "authentication_flow": "challenge",
        "electronic_commerce_indicator": "05",
        "exemption_indicator": None,
        "result": "authenticated",
        "result_reason": None,
        "transaction_id": new_id("", 32),
        "version": "2.2.0",
    }


def outcome(decline: Decline | None) -> dict[str, Any]:
    if decline is None:
        return {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    return {
        "advice_code": "try_again_later" if decline.code == "processing_error" else None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "declined_by_network",
        "reason": decline.reason,
        "risk_level": "normal",
        "risk_score": 32,
        "seller_message": "The bank did not return any further details with this decline.",
        "type": "issuer_declined",
    }


def method_details(method: dict[str, Any], amount: int, decline: Decline | None) -> dict:
    if method.get("type") != "card":
        debit = {**method["au_becs_debit"], "mandate": new_id("mandate_")}
        return {"au_becs_debit": debit, "type": "au_becs_debit"}
    card = method["card"]
    return {
        "card": {
            "amount_authorized": None if decline else amount,
            "authorization_code": None if decline else digits(6),
            "brand": card["brand"],
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": decline.cvc_check if decline else "pass",
            },
            "country": card["country"],
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
            "extended_authorization": {"status": "disabled"},
            "fingerprint": card["fingerprint"],
            "funding": card["funding"],
            "incremental_authorization": {"status": "unavailable"},
            "installments": None,
            "last4": card["last4"],
            "mandate": None,
            "multicapture": {"status": "unavailable"},
            "network": card["brand"],
            "network_token": {"used": False},
            "network_transaction_id": None if decline else digits(15),
            "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
            "regulated_status": "unregulated",
            "three_d_secure": None,
            "transaction_link_id": None,
            "wallet": None,
        },
        "type": "card",
    }


def charge_object(
    payment_intent: dict[str, Any],
    method: dict[str, Any],
    decline: Decline | None,
    running: StripeStandin,
    account: str | None,
) -> dict[str, Any]:
    charge_id = new_id("ch_")
    amount = payment_intent["amount"]
    paid = decline is None
    fee = payment_intent.get("application_fee_amount")
    clinic = running.state.account(account) if account else None
    descriptor = clinic["settings"]["payments"]["statement_descriptor"] if clinic else None
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if paid else 0,
        "amount_refunded": 0,
        "application": payment_intent["application"],
        "application_fee": new_id("fee_") if fee and paid else None,
        "application_fee_amount": fee,
        "balance_transaction": new_id("txn_") if paid else None,
        "billing_details": method["billing_details"],
        "calculated_statement_descriptor": descriptor
        or (display_name(clinic).upper()[:22] if clinic else None),
        "captured": paid,
        "created": int(time.time()),
        "currency": payment_intent["currency"],
        "customer": None,
        "description": payment_intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": decline.code if decline else None,
        "failure_message": decline.message if decline else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": outcome(decline),
        "paid": paid,
        "payment_intent": payment_intent["id"],
        "payment_method": method["id"],
        "payment_method_details": method_details(method, amount, decline),
        "radar_options": {},
        "receipt_email": payment_intent["receipt_email"],
        "receipt_number": f"{digits(4)}-{digits(4)}" if paid else None,
        "receipt_url": None,
        "refunded": False,
        "refunds": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/charges/{charge_id}/refunds",
        },
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": payment_intent["statement_descriptor"],
        "statement_descriptor_suffix": payment_intent["statement_descriptor_suffix"],
        "status": "succeeded" if paid else "failed",
        "transfer_data": None,
        "transfer_group": payment_intent["transfer_group"],
    }


# -- refunds -----------------------------------------------------------------------------------


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
    """``POST /v1/refunds``: refunded at once (``succeeded``); the charge shows it and
    ``charge.refunded`` then ``refund.created`` are sent."""
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
            "balance_transaction": new_id("txn_"),
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
            "status": "succeeded",
            "transfer_reversal": None,
        }
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


def payment_object(
    running: StripeStandin, account: str | None, object_id: str, kind: str
) -> dict[str, Any]:
    found = running.state.get_object(account, object_id)
    if found is None or found.get("object") != kind:
        raise no_such(kind, object_id)
    return found
