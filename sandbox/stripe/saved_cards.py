"""Saving a card on a setup-mode Checkout Session: the SetupIntent, the PaymentMethod it
attaches to the Customer, and the session completed with nothing charged.

Saving checks the card with its bank, so the cards that decline fail here already (all but
``4000 0000 0000 0341``, which saves and declines only when charged), and the 3-D Secure
cards are challenged first. Events, in order: ``setup_intent.created`` (first attempt only),
``customer.created`` (``customer_creation=always``), ``payment_method.attached``,
``setup_intent.succeeded``, ``checkout.session.completed``; a decline gives
``setup_intent.setup_failed`` and the session stays open; a challenge
``setup_intent.requires_action``.
"""

import time
from typing import Any

from sandbox.stripe.cards import CardDetails, Decline, test_card
from sandbox.stripe.checkout import extras
from sandbox.stripe.customers import create_customer
from sandbox.stripe.errors import doc_url
from sandbox.stripe.payment_objects import card_payment_method
from sandbox.stripe.payment_steps import Attempt, Payment, PaymentRefused, success_url
from sandbox.stripe.runtime import StripeStandin
from sandbox.stripe.store import new_id

SETUP_INTENT = "setup_intent"
SETUP_AUTHENTICATION_FAILED = Decline(
    "setup_intent_authentication_failure",
    None,
    "The latest attempt to set up the payment method has failed because authentication failed.",
    "authentication_required",
)


def setup_intent_object(
    running: StripeStandin, customer: str | None, intent_data: dict[str, Any]
) -> dict[str, Any]:
    setup_intent_id = new_id("seti_")
    return {
        "id": setup_intent_id,
        "object": SETUP_INTENT,
        "application": running.settings.client_id,
        "automatic_payment_methods": None,
        "cancellation_reason": None,
        "client_secret": f"{setup_intent_id}_secret_{new_id('', 32)}",
        "created": int(time.time()),
        "customer": customer,
        "description": intent_data.get("description"),
        "excluded_payment_method_types": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": dict(intent_data.get("metadata") or {}),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": "off_session",
    }


def is_setup(running: StripeStandin, account: str | None, session_id: str) -> bool:
    session = running.state.get_object(account, session_id)
    return session is not None and session.get("mode") == "setup"


class Setup(Payment):
    """One step of saving a card on one setup-mode session, under the state lock."""

    def setup_intent_for(self, session: dict[str, Any]) -> dict[str, Any]:
        """The session's SetupIntent, made at the first attempt to save a card."""
        existing = self.get(session["setup_intent"])
        if existing is not None:
            return existing
        intent_data = extras(self.running, self.account, session["id"]).get("setup_intent_data", {})
        setup_intent = self.keep(
            setup_intent_object(self.running, session["customer"], intent_data)
        )
        session["setup_intent"] = setup_intent["id"]
        self.keep(session)
        self.emit("setup_intent.created", setup_intent)
        return setup_intent

    def require_action(self, session, setup_intent, method) -> Attempt:  # type: ignore[override]
        url = f"{self.base_url}/c/pay/{session['id']}/authenticate/{setup_intent['id']}"
        setup_intent.update(
            status="requires_action",
            payment_method=method["id"],
            next_action={
                "type": "redirect_to_url",
                "redirect_to_url": {"return_url": success_url(session), "url": url},
            },
        )
        self.keep(setup_intent)
        self.emit("setup_intent.requires_action", setup_intent)
        return Attempt("requires_action", session, None, url, setup_intent=setup_intent)

    def refuse(
        self, session: dict[str, Any], setup_intent: dict[str, Any], method: dict, decline: Decline
    ) -> Attempt:
        error = {
            "code": decline.code,
            "decline_code": decline.decline_code,
            "doc_url": doc_url(decline.code),
            "message": decline.message,
            "payment_method": method,
            "type": "card_error",
        }
        if decline.decline_code is None:
            del error["decline_code"]
        setup_intent.update(
            status="requires_payment_method",
            last_setup_error=error,
            payment_method=None,
            next_action=None,
        )
        self.keep(setup_intent)
        self.emit("setup_intent.setup_failed", setup_intent)
        return Attempt("declined", session, None, error=error, setup_intent=setup_intent)

    def save(
        self, session: dict[str, Any], setup_intent: dict[str, Any], method: dict[str, Any]
    ) -> Attempt:
        customer = session["customer"]
        billing = method["billing_details"]
        if customer is None and session["customer_creation"] == "always":
            fields = {"email": billing["email"], "name": billing["name"], "metadata": {}}
            customer = create_customer(self.running, self.account, fields)["id"]
            session["customer"] = customer
        elif customer is not None:
            self.fill_in_email(customer, billing["email"])
        if customer is not None:
            method["customer"] = customer
            self.keep(method)
            self.emit("payment_method.attached", method)
        setup_intent.update(
            status="succeeded",
            customer=customer,
            payment_method=method["id"],
            last_setup_error=None,
            next_action=None,
        )
        self.keep(setup_intent)
        self.emit("setup_intent.succeeded", setup_intent)
        self.complete(session, method, paid=None)
        return Attempt("succeeded", session, None, success_url(session), setup_intent=setup_intent)

    def fill_in_email(self, customer_id: str, email: str) -> None:
        """Checkout sets the email typed in on a Customer that had none."""
        customer = self.get(customer_id)
        if customer is None or customer.get("email"):
            return
        customer["email"] = email
        self.keep(customer)
        self.emit("customer.updated", customer, {"email": None})

    def checked(
        self, session: dict[str, Any], setup_intent: dict[str, Any], method: dict[str, Any]
    ) -> Attempt:
        decline = test_card(method["card"]["fingerprint"]).setup_decline
        if decline is not None:
            return self.refuse(session, setup_intent, method, decline)
        return self.save(session, setup_intent, method)


def save_card(
    running: StripeStandin,
    account: str | None,
    session_id: str,
    card: CardDetails,
    base_url: str,
    authenticate: bool | None = None,
) -> Attempt:
    """A card typed into a setup-mode session's page. A 3-D Secure card waits for
    ``authenticate_setup`` unless ``authenticate`` is given."""
    step = Setup(running, account, base_url)
    with running.state.lock:
        session = step.open_session(session_id)
        setup_intent = step.setup_intent_for(session)
        method = step.keep(card_payment_method(card))
        if test_card(card.fingerprint).three_d_secure:
            if authenticate is None:
                return step.require_action(session, setup_intent, method)
            if not authenticate:
                return step.refuse(session, setup_intent, method, SETUP_AUTHENTICATION_FAILED)
        return step.checked(session, setup_intent, method)


def authenticate_setup(
    running: StripeStandin,
    account: str | None,
    session_id: str,
    setup_intent_id: str,
    completed: bool,
    base_url: str,
) -> Attempt:
    """The person's answer on the 3-D Secure page, for a card being saved."""
    step = Setup(running, account, base_url)
    with running.state.lock:
        session = step.open_session(session_id)
        setup_intent = step.get(setup_intent_id)
        if (
            setup_intent is None
            or session["setup_intent"] != setup_intent_id
            or setup_intent["status"] != "requires_action"
        ):
            raise PaymentRefused("This card is not waiting for authentication.", session)
        method = step.get(setup_intent["payment_method"]) or {}
        if not completed:
            return step.refuse(session, setup_intent, method, SETUP_AUTHENTICATION_FAILED)
        return step.checked(session, setup_intent, method)
