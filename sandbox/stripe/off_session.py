"""Charging a saved card: PaymentIntents made and confirmed through the API
(``POST /v1/payment_intents``, ``.../confirm``), off-session or with the customer back.

The saved card's test number decides (``cards.TEST_CARDS``). Off-session
(``off_session=true``): ``4000 0000 0000 0341`` is declined (402 ``card_declined``), and
``4000 0027 6000 3184`` needs its holder (402 ``authentication_required``); either way the
PaymentIntent goes back to ``requires_payment_method`` with ``last_payment_error``, as on
Stripe. To bring the holder back, confirm it again with a ``return_url`` and without
``off_session``: it answers ``requires_action`` whose ``next_action.redirect_to_url.url`` is
the stand-in's 3-D Secure page (``authentication_page``); after it the person lands on the
``return_url`` with ``payment_intent``, ``payment_intent_client_secret`` and
``redirect_status``, as Stripe sends them. Events: ``payment_intent.created``, then
``charge.succeeded`` and ``payment_intent.succeeded``, or ``charge.failed`` and
``payment_intent.payment_failed``, or ``payment_intent.requires_action``.
"""

from typing import Any
from urllib.parse import urlencode

from sandbox.stripe.cards import AUTHENTICATION_REQUIRED, Decline, TestCard, test_card
from sandbox.stripe.checkout import SESSION
from sandbox.stripe.errors import StripeError, no_such
from sandbox.stripe.payment_objects import three_d_secure
from sandbox.stripe.payment_steps import Payment
from sandbox.stripe.runtime import StripeStandin

CONFIRMABLE = ("requires_payment_method", "requires_confirmation")
BEHAVES_AS = "standin.card_behaviour"  # beside a saved card a test made behave as another
PAYMENT_AUTHENTICATION_FAILED = Decline(
    "payment_intent_authentication_failure",
    None,
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data "
    "or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
    "authentication_required",
)


class CardDeclined(StripeError):
    """402 ``card_error``, carrying the PaymentIntent as it now stands, as Stripe's does."""

    status = 402
    error_type = "card_error"

    def __init__(self, error: dict[str, Any], payment_intent: dict[str, Any]):
        super().__init__(error["message"], code=error["code"])
        self.details = {**error, "payment_intent": payment_intent}

    def body(self) -> dict[str, Any]:
        return {"error": self.details}


def behaviour(running: StripeStandin, account: str | None, method: dict[str, Any]) -> TestCard:
    """What charging the saved card does: its own test card's behaviour, or the one a test
    gave it since (``/_sandbox/payment_methods/<pm>/behaves-as``)."""
    instead = running.state.get_object(account, f"{method['id']}/behaves-as")
    return test_card(instead["fingerprint"] if instead else method["card"]["fingerprint"])


class OffSessionPayment(Payment):
    """One confirmation of one PaymentIntent made through the API, under the state lock."""

    def confirm(
        self, payment_intent: dict[str, Any], off_session: bool, return_url: str | None
    ) -> dict[str, Any]:
        method = self.get(payment_intent["payment_method"]) or {}
        card = behaviour(self.running, self.account, method)
        needs_holder = card.always_authenticates if off_session else card.three_d_secure
        if needs_holder and off_session:
            charge = self.charge(payment_intent, method, AUTHENTICATION_REQUIRED)
            self.decline(payment_intent, method, AUTHENTICATION_REQUIRED, charge)
        if needs_holder:
            return self.ask_for_authentication(payment_intent, return_url)
        return self.charge_card(payment_intent, method, card.decline)

    def charge_card(
        self,
        payment_intent: dict[str, Any],
        method: dict[str, Any],
        decline: Decline | None,
        authenticated: bool = False,
    ) -> dict[str, Any]:
        charge = self.charge(payment_intent, method, decline)
        if authenticated:
            charge["payment_method_details"]["card"]["three_d_secure"] = three_d_secure()
            self.keep(charge)
        if decline is not None:
            self.decline(payment_intent, method, decline, charge)
        self.succeed(payment_intent, charge)
        return payment_intent

    def decline(
        self,
        payment_intent: dict[str, Any],
        method: dict[str, Any],
        decline: Decline,
        charge: dict[str, Any] | None,
    ) -> None:
        """Raises the 402 the confirming call answers; the PaymentIntent keeps no method."""
        error = self.fail(payment_intent, method, decline, charge)
        raise CardDeclined(error, payment_intent)

    def ask_for_authentication(
        self, payment_intent: dict[str, Any], return_url: str | None
    ) -> dict[str, Any]:
        if return_url is None:
            raise StripeError(
                "This card needs 3-D Secure. The Stripe stand-in has no Stripe.js: confirm "
                "with a return_url, and send the customer to next_action.redirect_to_url.url.",
                param="return_url",
            )
        secret = payment_intent["client_secret"]
        page = f"{self.base_url}/pay/authenticate/{payment_intent['id']}"
        payment_intent.update(
            status="requires_action",
            next_action={
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "return_url": return_url,
                    "url": f"{page}?{urlencode({'client_secret': secret})}",
                },
            },
        )
        self.keep(payment_intent)
        self.emit("payment_intent.requires_action", payment_intent)
        return payment_intent


def payment_intent_in(
    running: StripeStandin, account: str | None, payment_intent_id: str
) -> dict[str, Any]:
    found = running.state.get_object(account, payment_intent_id)
    if found is None or found.get("object") != "payment_intent":
        raise no_such("payment_intent", payment_intent_id)
    return found


def from_checkout(running: StripeStandin, account: str | None, payment_intent_id: str) -> bool:
    return any(
        s["payment_intent"] == payment_intent_id for s in running.state.objects_of(account, SESSION)
    )


def authenticated(
    running: StripeStandin,
    account: str | None,
    payment_intent_id: str,
    completed: bool,
    base_url: str,
) -> tuple[dict[str, Any], str]:
    """The holder's answer on the 3-D Secure page: the PaymentIntent, and where Stripe sends
    the browser next (the ``return_url`` with the outcome). Raises ``LookupError`` when the
    PaymentIntent is not waiting for it."""
    step = OffSessionPayment(running, account, base_url)
    with running.state.lock:
        payment_intent = step.get(payment_intent_id)
        if (
            payment_intent is None
            or payment_intent["status"] != "requires_action"
            or from_checkout(running, account, payment_intent_id)  # its page is Checkout's
        ):
            raise LookupError(payment_intent_id)
        return_url = payment_intent["next_action"]["redirect_to_url"]["return_url"]
        method = step.get(payment_intent["payment_method"]) or {}
        try:
            if not completed:
                step.decline(payment_intent, method, PAYMENT_AUTHENTICATION_FAILED, None)
            decline = behaviour(running, account, method).decline
            step.charge_card(payment_intent, method, decline, authenticated=True)
        except CardDeclined:
            pass  # the PaymentIntent says so, and the return_url is told
        outcome = "succeeded" if payment_intent["status"] == "succeeded" else "failed"
    query = urlencode(
        {
            "payment_intent": payment_intent["id"],
            "payment_intent_client_secret": payment_intent["client_secret"],
            "redirect_status": outcome,
        }
    )
    joiner = "&" if "?" in return_url else "?"
    return payment_intent, f"{return_url}{joiner}{query}"
