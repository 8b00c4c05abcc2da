"""Saved cards, for the Stripe adapter: a Customer and a setup Checkout page on the connected
account, the card Stripe saved, off-session PaymentIntents on it, and detaching it. Read
into ``stripe_values`` here; ``StripeApi`` calls these over its one client."""

from typing import Any

import stripe

from vcpay.integrations.stripe_card_values import (
    CardSetup,
    CardSetupRequest,
    OffSessionCharge,
    SavedCardDetails,
)
from vcpay.integrations.stripe_errors import StripeRefused, calling_stripe


def start_setup(client: stripe.StripeClient, order: CardSetupRequest, expires_at: int) -> CardSetup:
    options = {"stripe_account": order.account_id}
    with calling_stripe("prepare saving the card"):
        customer = client.v1.customers.create(
            {"email": order.email, "name": order.name, "metadata": order.metadata}
            if order.email
            else {"name": order.name, "metadata": order.metadata},
            {**options, "idempotency_key": f"{order.idempotency_key}-customer"},
        )
    params: dict[str, Any] = {
        "mode": "setup",
        "currency": "aud",
        "customer": customer.id,
        "setup_intent_data": {"metadata": order.metadata},
        "metadata": order.metadata,
        "success_url": order.success_url,
        "cancel_url": order.cancel_url,
        "expires_at": expires_at,
        "locale": order.locale,
    }
    with calling_stripe("open the page that saves the card"):
        session = client.v1.checkout.sessions.create(
            params, {**options, "idempotency_key": f"{order.idempotency_key}-setup"}
        )
    return _setup(session.to_dict())


def read_setup(client: stripe.StripeClient, account_id: str, session_id: str) -> CardSetup:
    """The setup page and, if Stripe saved a card on it, the card (read from its
    SetupIntent, on that account)."""
    options = {"stripe_account": account_id}
    with calling_stripe("read the saved card"):
        session = client.v1.checkout.sessions.retrieve(session_id, options=options).to_dict()
        setup = _setup(session)
        if session.get("mode") != "setup" or setup.setup_intent_id is None:
            return setup
        intent = client.v1.setup_intents.retrieve(
            setup.setup_intent_id, {"expand": ["payment_method"]}, options
        ).to_dict()
    if intent.get("status") != "succeeded" or not isinstance(intent.get("payment_method"), dict):
        return setup
    return _setup(session, _card(intent["payment_method"], intent.get("customer")))


def _setup(session: dict[str, Any], saved: SavedCardDetails | None = None) -> CardSetup:
    intent = session.get("setup_intent")
    customer = session.get("customer")
    return CardSetup(
        session_id=session["id"],
        url=session.get("url"),
        status=session.get("status") or "open",
        customer_id=customer.get("id") if isinstance(customer, dict) else customer,
        setup_intent_id=intent.get("id") if isinstance(intent, dict) else intent,
        saved=saved,
    )


def _card(method: dict[str, Any], customer: Any) -> SavedCardDetails:
    card = method.get("card") or {}
    billing = method.get("billing_details") or {}
    return SavedCardDetails(
        payment_method_id=method["id"],
        customer_id=customer.get("id") if isinstance(customer, dict) else customer,
        brand=str(card.get("brand") or "")[:20],
        last4=str(card.get("last4") or "")[:4],
        exp_month=card.get("exp_month"),
        exp_year=card.get("exp_year"),
        email=str(billing.get("email") or "")[:254],
    )


def charge(
    client: stripe.StripeClient,
    account_id: str,
    params: dict[str, Any],
    idempotency_key: str,
) -> OffSessionCharge:
    """An off-session PaymentIntent confirmed at once; a refused card is an answer (the
    PaymentIntent waits for another attempt), not an error."""
    options = {"stripe_account": account_id, "idempotency_key": idempotency_key}
    body = {**params, "off_session": True, "confirm": True, "expand": ["latest_charge"]}
    with calling_stripe("charge the saved card"):
        try:
            intent = client.v1.payment_intents.create(body, options)
        except stripe.CardError as error:
            return _refused(error)
    return _charge(intent.to_dict())


def confirm(
    client: stripe.StripeClient, account_id: str, intent_id: str, method_id: str, return_url: str
) -> OffSessionCharge:
    """The patient is back to authenticate: confirm on session, with where 3-D Secure returns."""
    params = {"payment_method": method_id, "return_url": return_url, "expand": ["latest_charge"]}
    with calling_stripe("confirm the payment"):
        try:
            intent = client.v1.payment_intents.confirm(
                intent_id, params, {"stripe_account": account_id}
            )
        except stripe.CardError as error:
            return _refused(error)
    return _charge(intent.to_dict())


def read_charge(client: stripe.StripeClient, account_id: str, intent_id: str) -> OffSessionCharge:
    with calling_stripe("read the payment"):
        intent = client.v1.payment_intents.retrieve(
            intent_id, {"expand": ["latest_charge"]}, {"stripe_account": account_id}
        )
    return _charge(intent.to_dict())


def detach(client: stripe.StripeClient, account_id: str, method_id: str) -> None:
    """Detach the card; one already detached (or gone) is fine."""
    try:
        with calling_stripe("remove the saved card"):
            client.v1.payment_methods.detach(method_id, options={"stripe_account": account_id})
    except StripeRefused:
        pass


def _refused(error: stripe.CardError) -> OffSessionCharge:
    found = getattr(error.error, "payment_intent", None)
    intent = found.to_dict() if hasattr(found, "to_dict") else dict(found or {})
    if not intent.get("id"):
        raise StripeRefused(f"Stripe refused the card: {error.user_message or error}") from None
    answer = _charge(intent)
    return OffSessionCharge(
        **{
            **answer.__dict__,
            "refusal": str(error.code or "card_declined"),
            "message": str(error.user_message or ""),
        }
    )


def _charge(intent: dict[str, Any]) -> OffSessionCharge:
    latest = intent.get("latest_charge")
    charge_data = latest if isinstance(latest, dict) else {}
    succeeded = charge_data.get("status") == "succeeded"
    card = (charge_data.get("payment_method_details") or {}).get("card") or {}
    action = intent.get("next_action") or {}
    error = intent.get("last_payment_error") or {}
    return OffSessionCharge(
        payment_intent_id=intent["id"],
        status=str(intent.get("status") or ""),
        amount=int(intent.get("amount") or 0),
        refusal=str(error.get("code") or "") if intent.get("status") != "succeeded" else "",
        message=str(error.get("message") or "") if intent.get("status") != "succeeded" else "",
        redirect_url=(action.get("redirect_to_url") or {}).get("url"),
        charge_id=charge_data.get("id") if charge_data else latest,
        card_brand=str(card.get("brand") or "") if succeeded else "",
        card_last4=str(card.get("last4") or "") if succeeded else "",
        receipt_number=str(charge_data.get("receipt_number") or "") if succeeded else "",
    )
