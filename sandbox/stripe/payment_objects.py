"""The objects a payment leaves on the connected account, in Stripe's shape: the
PaymentIntent, the PaymentMethod (a card, or a bank account for a delayed debit), the Charge
with its outcome and method details; and reading one of them back by id."""

import secrets
import time
from typing import Any

from sandbox.stripe.accounts import display_name
from sandbox.stripe.cards import CardDetails, Decline, PayerDetails
from sandbox.stripe.errors import no_such
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


def digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


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
            "generated_from": None,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "regulated_status": None,
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": int(time.time()),
        "customer": None,
        "customer_account": None,
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
        "balance_transaction": None,  # kept by the payment step, once the money has moved
        "billing_details": method["billing_details"],
        "calculated_statement_descriptor": descriptor
        or (display_name(clinic).upper()[:22] if clinic else None),
        "captured": paid,
        "created": int(time.time()),
        "currency": payment_intent["currency"],
        "customer": payment_intent["customer"],
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


def payment_object(
    running: StripeStandin, account: str | None, object_id: str, kind: str
) -> dict[str, Any]:
    found = running.state.get_object(account, object_id)
    if found is None or found.get("object") != kind:
        raise no_such(kind, object_id)
    return found
