"""Paying a Checkout Session: by card (with 3-D Secure for the cards that ask for it), or
by a delayed bank debit that ``settle`` decides later.

The pay page and the control API both call ``pay_by_card``, ``authenticate``,
``pay_by_debit`` and ``settle``, so a benchmark without a browser takes the same path as a
person. Every step runs under the state lock: a session cannot be paid while it expires. The
steps are in ``payment_steps``, the objects they leave in ``payment_objects``, refunds in
``refunds``.
"""

from typing import Any

from sandbox.stripe.balance import record_charge
from sandbox.stripe.cards import (
    AUTHENTICATION_FAILED,
    CardDetails,
    Decline,
    PayerDetails,
    test_card,
)
from sandbox.stripe.checkout import extras
from sandbox.stripe.checkout_expiry import session_in
from sandbox.stripe.payment_objects import (
    card_payment_method,
    debit_payment_method,
    digits,
    outcome,
)
from sandbox.stripe.payment_steps import Attempt, Payment, PaymentRefused, success_url
from sandbox.stripe.runtime import StripeStandin
from sandbox.stripe.saved_cards import authenticate_setup, is_setup, save_card

__all__ = ["Attempt", "PaymentRefused", "authenticate", "pay_by_card", "pay_by_debit", "settle"]

DEBIT_FAILURE = Decline(
    "debit_not_authorized",
    None,
    "The customer's bank account could not be debited: the debit was not authorised.",
    "debit_not_authorized",
)


def pay_by_card(
    running: StripeStandin,
    account: str | None,
    session_id: str,
    card: CardDetails,
    base_url: str,
    authenticate: bool | None = None,
) -> Attempt:
    """A card typed into the pay page. A 3-D Secure card waits for ``authenticate`` unless
    it is given (True completes the challenge, False fails it). A setup-mode session saves
    the card instead (``saved_cards``)."""
    if is_setup(running, account, session_id):
        return save_card(running, account, session_id, card, base_url, authenticate)
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
    if is_setup(running, account, session_id):
        return authenticate_setup(
            running, account, session_id, payment_intent_id, completed, base_url
        )
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
        if session["mode"] == "setup":
            raise PaymentRefused("The Stripe stand-in saves cards only, not bank accounts.")
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
                balance_transaction=record_charge(running, account, charge),
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
