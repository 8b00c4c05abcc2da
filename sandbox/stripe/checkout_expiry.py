"""How a Checkout Session ends by expiring: on request, when ``expires_at`` passes (the
stand-in's clock, and any read of the session), or from the control API; and finding a
session in whichever account holds it."""

import time
from typing import Any

from sandbox.stripe.accounts import display_name
from sandbox.stripe.checkout import SESSION
from sandbox.stripe.errors import (
    InvalidRequest,
    no_such,
)
from sandbox.stripe.events import originating_request
from sandbox.stripe.runtime import StripeStandin


def session_in(running: StripeStandin, account: str | None, session_id: str) -> dict[str, Any]:
    """A session of this account, expired first if its time is up."""
    expire_if_due(running, account, session_id)
    session = running.state.get_object(account, session_id)
    if session is None or session.get("object") != SESSION:
        raise no_such(SESSION, session_id)
    return session


def find_session(running: StripeStandin, session_id: str) -> tuple[str | None, dict] | None:
    """A session in whichever account holds it (the pay page has only the id)."""
    found = running.state.find_object(session_id)
    if found is None or found[1].get("object") != SESSION:
        return None
    account = found[0]
    expire_if_due(running, account, session_id)
    return account, running.state.get_object(account, session_id) or found[1]


def merchant_name(running: StripeStandin, account: str | None) -> str:
    clinic = running.state.account(account) if account else None
    return display_name(clinic) if clinic else running.settings.platform_name


def expire(running: StripeStandin, account: str | None, session_id: str) -> dict[str, Any]:
    """End an open session: ``checkout.session.expired``, and its PaymentIntent (or
    SetupIntent), if a payment was tried, is canceled. Raises InvalidRequest if the session
    is not open."""
    with running.state.lock:
        session = running.state.get_object(account, session_id)
        if session is None:
            raise no_such(SESSION, session_id)
        if session["status"] != "open":
            raise InvalidRequest(
                'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f'Checkout Session has a status of "{session["status"]}".',
                param="session",
            )
        session.update(status="expired", url=None)
        running.state.put_object(account, session)
        cancel_payment_intent(running, account, session.get("payment_intent"))
        cancel_payment_intent(running, account, session.get("setup_intent"))
        running.events.emit(
            "checkout.session.expired", session, account, request=originating_request()
        )
        return session


def cancel_payment_intent(running: StripeStandin, account: str | None, pi_id: str | None) -> None:
    """The session's PaymentIntent, or in setup mode its SetupIntent, unless it succeeded."""
    intent = running.state.get_object(account, pi_id) if pi_id else None
    if intent is None or intent["status"] in ("succeeded", "canceled"):
        return
    intent.update(status="canceled", cancellation_reason="abandoned", next_action=None)
    if intent["object"] == "payment_intent":
        intent["canceled_at"] = int(time.time())
    running.state.put_object(account, intent)
    running.events.emit(
        f"{intent['object']}.canceled", intent, account, request=originating_request()
    )


def is_due(session: dict[str, Any], now: float) -> bool:
    return session["status"] == "open" and session["expires_at"] <= now


def expire_if_due(running: StripeStandin, account: str | None, session_id: str) -> None:
    with running.state.lock:
        session = running.state.get_object(account, session_id)
        if session and session.get("object") == SESSION and is_due(session, time.time()):
            expire(running, account, session_id)


def expire_due_sessions(running: StripeStandin) -> int:
    """What Stripe's clock does: every open session past its ``expires_at`` expires."""
    now = time.time()
    expired = 0
    with running.state.lock:
        for account, session in running.state.objects_everywhere(SESSION):
            if is_due(session, now):
                expire(running, account, session["id"])
                expired += 1
    return expired
