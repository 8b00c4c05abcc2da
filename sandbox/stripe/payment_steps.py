"""One step of paying one Checkout Session, under the state lock: the session and its
PaymentIntent, a charge that succeeds or is declined, a 3-D Secure challenge, the session
completed; each change kept and announced with the event Stripe sends for it.

Event order for a card that succeeds: ``payment_intent.created`` (first attempt only),
``charge.succeeded``, ``payment_intent.succeeded``, ``checkout.session.completed``. A decline:
``charge.failed``, ``payment_intent.payment_failed``, and the session stays open.
"""

from dataclasses import dataclass
from typing import Any

from sandbox.stripe.balance import record_charge
from sandbox.stripe.cards import Decline
from sandbox.stripe.checkout import extras
from sandbox.stripe.checkout_expiry import session_in
from sandbox.stripe.events import originating_request
from sandbox.stripe.payment_objects import (
    NULL_ADDRESS,
    charge_object,
    payment_intent_object,
    three_d_secure,
)
from sandbox.stripe.runtime import StripeStandin


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
    payment_intent: dict[str, Any] | None
    next_url: str | None = None
    error: dict[str, Any] | None = None
    setup_intent: dict[str, Any] | None = None  # setup mode: the card saved, or not

    def as_json(self) -> dict[str, Any]:
        answer = {
            "outcome": self.outcome,
            "error": self.error,
            "next_url": self.next_url,
            "session": self.session,
            "payment_intent": self.payment_intent,
        }
        if self.setup_intent is not None:
            answer["setup_intent"] = self.setup_intent
        return answer


def success_url(session: dict[str, Any]) -> str:
    return session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"])


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

    def complete(self, session: dict[str, Any], method: dict[str, Any], paid: bool | None) -> None:
        """``paid`` None: nothing was to be paid (setup mode)."""
        billing = method["billing_details"]
        session.update(
            status="complete",
            payment_status={True: "paid", False: "unpaid", None: "no_payment_required"}[paid],
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
        if charge["status"] == "succeeded":
            charge["balance_transaction"] = record_charge(self.running, self.account, charge)
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
