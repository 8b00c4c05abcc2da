"""``POST /v1/payment_intents`` (create, and confirm at once), ``.../confirm`` and
``.../cancel``: charging a saved card (``off_session``), and the hosted 3-D Secure page a
``requires_action`` PaymentIntent sends its customer to (``/pay/authenticate/<pi>``).
PaymentIntents of Checkout Sessions cannot be confirmed or canceled here, as on Stripe."""

import secrets
import time
from typing import Any

from flask import Blueprint, Response, abort, jsonify, redirect, render_template, request
from stripe.params import (
    PaymentIntentCancelParams,
    PaymentIntentConfirmParams,
    PaymentIntentCreateParams,
)

from sandbox.stripe.cards import EMAIL
from sandbox.stripe.checkout import require_charges_enabled
from sandbox.stripe.checkout_expiry import merchant_name
from sandbox.stripe.checkout_line_items import check_total
from sandbox.stripe.checkout_params import integer, string_map, text, url
from sandbox.stripe.customers import customer_in
from sandbox.stripe.errors import InvalidParameter, InvalidRequest, missing
from sandbox.stripe.expand import expanded
from sandbox.stripe.gateway import api_params, current_account
from sandbox.stripe.money import CURRENCIES, formatted
from sandbox.stripe.off_session import (
    CONFIRMABLE,
    OffSessionPayment,
    authenticated,
    from_checkout,
    payment_intent_in,
)
from sandbox.stripe.params import names, refuse_unknown
from sandbox.stripe.payment_methods import usable_method
from sandbox.stripe.payment_objects import payment_intent_object
from sandbox.stripe.runtime import emit_event, public_url, standin

intents_api = Blueprint("intents_api", __name__)

TEXT = ("description", "statement_descriptor", "statement_descriptor_suffix", "transfer_group")
CREATE_TAKES = frozenset(
    {
        *TEXT, "amount", "currency", "customer", "payment_method", "confirm", "off_session",
        "return_url", "metadata", "receipt_email", "application_fee_amount",
        "allowed_payment_method_types", "expand",
    }
)  # fmt: skip
CONFIRM_TAKES = frozenset(
    {"payment_method", "off_session", "return_url", "receipt_email", "expand"}
)
CANCELLATION_REASONS = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")


def read_params(params: dict[str, Any], params_class: type, takes: frozenset[str]) -> None:
    refuse_unknown(params, params_class)
    for name in params:
        if name not in takes:
            raise InvalidParameter(
                f"The Stripe stand-in does not support {name} on PaymentIntents.", param=name
            )
    if params.get("allowed_payment_method_types") not in (None, ["card"]):
        raise InvalidParameter(
            "The Stripe stand-in takes only cards: allowed_payment_method_types=[card].",
            param="allowed_payment_method_types",
        )
    email = params.get("receipt_email")
    if email is not None and not EMAIL.match(text(email, "receipt_email")):
        raise InvalidParameter(
            f"Invalid email address: {email}", param="receipt_email", code="email_invalid"
        )
    if "return_url" in params:
        url(params["return_url"], "return_url")


def flag(params: dict[str, Any], name: str) -> bool:
    """Stripe's booleans; ``off_session`` also takes ``one_off`` and ``recurring``."""
    value = params.get(name, "false")
    if value in ("one_off", "recurring") and name == "off_session":
        return True
    if value not in ("true", "false"):
        raise InvalidParameter(f"Invalid boolean: {value}", param=name)
    return value == "true"


def new_payment_intent(params: dict[str, Any]) -> dict[str, Any]:
    running, account = standin(), current_account()
    if "amount" not in params:
        raise missing("amount")
    if "currency" not in params:
        raise missing("currency")
    amount, currency = integer(params["amount"], "amount"), text(params["currency"], "currency")
    if currency not in CURRENCIES:
        raise InvalidParameter(f"Invalid currency: {currency}", param="currency")
    check_total(amount, currency)
    data: dict[str, Any] = {name: text(params[name], name) for name in TEXT if name in params}
    data["metadata"] = string_map(params.get("metadata"), "metadata")
    if "application_fee_amount" in params:
        fee = integer(params["application_fee_amount"], "application_fee_amount")
        if not 0 <= fee <= amount:
            raise InvalidParameter(
                "The application fee must be between 0 and the amount of the payment.",
                param="application_fee_amount",
            )
        data["application_fee_amount"] = fee
    customer = params.get("customer")
    if customer is not None:
        customer = customer_in(running, account, text(customer, "customer"))["id"]
    method = params.get("payment_method")
    if method is not None:
        method = usable_method(running, account, method, customer)["id"]
    if account is not None:
        require_charges_enabled(running, account)
    payment_intent = payment_intent_object(
        {"amount_total": amount, "currency": currency}, data, running
    )
    payment_intent.update(
        customer=customer,
        payment_method=method,
        receipt_email=params.get("receipt_email"),
        status="requires_confirmation" if method else "requires_payment_method",
    )
    return payment_intent


def confirmed(payment_intent: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Confirm under the lock; a decline raises the 402 with the PaymentIntent in it."""
    running, account = standin(), current_account()
    if "payment_method" in params:
        method = usable_method(
            running, account, params["payment_method"], payment_intent["customer"]
        )
        payment_intent["payment_method"] = method["id"]
    if payment_intent["payment_method"] is None:
        raise InvalidRequest(
            "You cannot confirm this PaymentIntent because it's missing a payment method. "
            "Update the PaymentIntent with a payment method and then confirm it again.",
            code="payment_intent_unexpected_state",
        )
    if "receipt_email" in params:
        payment_intent["receipt_email"] = params["receipt_email"]
    step = OffSessionPayment(running, account, public_url())
    return step.confirm(payment_intent, flag(params, "off_session"), params.get("return_url"))


@intents_api.post("/v1/payment_intents")
def create() -> Response:
    params = api_params(*names(PaymentIntentCreateParams))
    read_params(params, PaymentIntentCreateParams, CREATE_TAKES)
    confirm, off_session = flag(params, "confirm"), flag(params, "off_session")
    if (off_session or "return_url" in params) and not confirm:
        name = "off_session" if off_session else "return_url"
        raise InvalidParameter(f"You can only pass {name} when confirm is true.", param=name)
    running, account = standin(), current_account()
    with running.state.lock:
        payment_intent = running.state.put_object(account, new_payment_intent(params))
        emit_event("payment_intent.created", payment_intent, account)
        if confirm:
            payment_intent = confirmed(payment_intent, params)
    return jsonify(expanded(running, account, payment_intent, params))


def confirmable(payment_intent_id: str) -> dict[str, Any]:
    running, account = standin(), current_account()
    payment_intent = payment_intent_in(running, account, payment_intent_id)
    if from_checkout(running, account, payment_intent_id):
        raise InvalidRequest(
            "You can't confirm or cancel the PaymentIntent of a Checkout Session. To cancel it, "
            "expire the Checkout Session instead.",
            code="payment_intent_unexpected_state",
        )
    return payment_intent


@intents_api.post("/v1/payment_intents/<payment_intent_id>/confirm")
def confirm(payment_intent_id: str) -> Response:
    params = api_params(*names(PaymentIntentConfirmParams))
    read_params(params, PaymentIntentConfirmParams, CONFIRM_TAKES)
    running = standin()
    with running.state.lock:
        payment_intent = confirmable(payment_intent_id)
        if payment_intent["status"] not in CONFIRMABLE:
            raise InvalidRequest(
                "You cannot confirm this PaymentIntent because it has a status of "
                f"{payment_intent['status']}. Only a PaymentIntent with one of the following "
                "statuses may be confirmed: requires_confirmation, requires_payment_method.",
                code="payment_intent_unexpected_state",
            )
        payment_intent = confirmed(payment_intent, params)
    return jsonify(expanded(running, current_account(), payment_intent, params))


@intents_api.post("/v1/payment_intents/<payment_intent_id>/cancel")
def cancel(payment_intent_id: str) -> Response:
    params = api_params(*names(PaymentIntentCancelParams))
    reason = params.get("cancellation_reason")
    if reason is not None and reason not in CANCELLATION_REASONS:
        raise InvalidParameter(
            f"Invalid cancellation_reason: must be one of {', '.join(CANCELLATION_REASONS)}",
            param="cancellation_reason",
        )
    running, account = standin(), current_account()
    with running.state.lock:
        payment_intent = confirmable(payment_intent_id)
        if payment_intent["status"] in ("succeeded", "canceled", "processing"):
            raise InvalidRequest(
                "You cannot cancel this PaymentIntent because it has a status of "
                f"{payment_intent['status']}.",
                code="payment_intent_unexpected_state",
            )
        payment_intent.update(
            status="canceled",
            canceled_at=int(time.time()),
            cancellation_reason=reason,
            next_action=None,
        )
        running.state.put_object(account, payment_intent)
        emit_event("payment_intent.canceled", payment_intent, account)
    return jsonify(expanded(running, account, payment_intent, params))


def waiting_intent(payment_intent_id: str) -> tuple[str | None, dict[str, Any]]:
    """The PaymentIntent the link names, if its client secret matches and it waits."""
    found = standin().state.find_object(payment_intent_id)
    secret = request.values.get("client_secret", "")
    if (
        found is None
        or found[1].get("object") != "payment_intent"
        or not secrets.compare_digest(found[1]["client_secret"], secret)
        or from_checkout(standin(), found[0], payment_intent_id)
    ):
        abort(404)
    return found


@intents_api.get("/pay/authenticate/<payment_intent_id>")
def authentication_page(payment_intent_id: str):
    account, payment_intent = waiting_intent(payment_intent_id)
    return render_template(
        "stripe_standin/authenticate_payment.html",
        payment_intent=payment_intent,
        merchant=merchant_name(standin(), account),
        total=formatted(payment_intent["amount"], payment_intent["currency"]),
    )


@intents_api.post("/pay/authenticate/<payment_intent_id>")
def authentication_answer(payment_intent_id: str):
    account, _ = waiting_intent(payment_intent_id)
    completed = request.form.get("outcome") == "complete"
    try:
        _, next_url = authenticated(standin(), account, payment_intent_id, completed, public_url())
    except LookupError:
        return authentication_page(payment_intent_id), 409
    return redirect(next_url, code=303)
