"""``/_sandbox``: what tests and benchmarks use to set the stand-in up and look inside.

Nothing here needs credentials, and none of it is in the call log.
"""

import time
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, jsonify, request

from sandbox.common.faults import add_fault_routes
from sandbox.stripe import checkout, checkout_expiry, connect, payments
from sandbox.stripe.accounts import (
    AccountFieldError,
    AccountFields,
    create_test_account,
    update_test_account,
)
from sandbox.stripe.cards import read_card, read_payer
from sandbox.stripe.errors import StripeError
from sandbox.stripe.runtime import public_url, standin
from sandbox.stripe.webhooks import WebhookFaultError

control = Blueprint("control", __name__, url_prefix="/_sandbox")
add_fault_routes(control, lambda: standin().faults, lambda: standin().calls)


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@control.errorhandler(ControlError)
def refused(error: ControlError):
    return jsonify({"error": error.message}), error.status


@control.errorhandler(AccountFieldError)
@control.errorhandler(WebhookFaultError)
@control.errorhandler(connect.ConsentRefused)
def invalid(error: Exception):
    return jsonify({"error": str(error)}), 400


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.get_data():
        return {}
    if not isinstance(body, dict):
        raise ControlError("The request body must be a JSON object.")
    return body


def seconds(body: dict[str, Any], name: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ControlError(f"'{name}' must be a non-negative number.")
    return float(value)


def with_connection(account: dict[str, Any]) -> dict[str, Any]:
    return {**account, "connected": standin().state.is_connected(account["id"])}


@control.post("/reset")
def reset():
    standin().reset()
    return jsonify({"reset": True})


# -- accounts --------------------------------------------------------------------------------


@control.post("/accounts")
def create_account():
    body = {"business_name": "Test Clinic", **json_body()}
    account = create_test_account(standin(), AccountFields.from_json(body))
    return jsonify(with_connection(account)), 201


@control.get("/accounts")
def accounts():
    return jsonify([with_connection(a) for a in standin().state.accounts()])


@control.post("/accounts/<account_id>")
def update_account(account_id: str):
    updated = update_test_account(standin(), account_id, AccountFields.from_json(json_body()))
    if updated is None:
        raise ControlError(f"No test account {account_id}.", 404)
    return jsonify(with_connection(updated))


@control.post("/accounts/<account_id>/disconnect")
def disconnect(account_id: str):
    if not connect.disconnect(standin(), account_id):
        raise ControlError(f"{account_id} is not connected to the platform.", 409)
    return jsonify(with_connection(standin().state.account(account_id) or {"id": account_id}))


# -- OAuth without a browser ------------------------------------------------------------------


@control.post("/oauth/authorize")
def authorize():
    """The consent screen's decision in one call: ``account`` to connect an existing test
    account, ``new_account`` to create one, or ``decision: "deny"``."""
    body = json_body()
    params = {"scope": "read_write", "client_id": standin().settings.client_id, **body}
    authorization = connect.authorization_request(params, standin().settings)
    new_account = body.get("new_account")
    fields = AccountFields.from_json(new_account) if isinstance(new_account, dict) else None
    decision = str(body.get("decision") or "approve")
    location = connect.decide(standin(), authorization, decision, body.get("account"), fields)
    return jsonify({"location": location})


@control.post("/oauth/codes/<code>/expire")
def expire_code(code: str):
    if not connect.expire_code(standin(), code):
        raise ControlError(f"No authorization code {code}.", 404)
    return jsonify({"expired": code})


# -- webhooks --------------------------------------------------------------------------------


@control.route("/webhooks", methods=["GET", "POST"])
def webhook_endpoint():
    webhooks = standin().webhooks
    if request.method == "POST":
        body = json_body()
        url = str(body.get("url") or "")
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise ControlError("'url' must be an http(s) URL, or empty to stop delivering.")
        webhooks.configure(url, str(body.get("secret") or webhooks.endpoint.secret))
    # The secret is not shown: tests set it, and the demo's is in its configuration.
    return jsonify({"url": webhooks.endpoint.url, "held": webhooks.held()})


@control.post("/webhooks/wait")
def wait_for_webhooks():
    timeout = seconds(json_body(), "timeout", 5.0)
    if not standin().webhooks.wait_idle(timeout):
        return jsonify({"idle": False}), 408
    return jsonify({"idle": True})


@control.post("/webhooks/release")
def release_webhooks():
    order = json_body().get("order", "created")
    if order not in ("created", "reverse"):
        raise ControlError("'order' is 'created' or 'reverse'.")
    return jsonify({"released": standin().webhooks.release(order)})


@control.get("/deliveries")
def deliveries():
    return jsonify(standin().webhooks.attempts(request.args.get("event")))


@control.route("/webhook-faults", methods=["GET", "POST", "DELETE"])
def webhook_faults():
    webhooks = standin().webhooks
    if request.method == "POST":
        webhooks.add_fault(json_body())
        return jsonify(webhooks.faults()), 201
    if request.method == "DELETE":
        webhooks.clear_faults()
        return "", 204
    return jsonify(webhooks.faults())


@control.get("/events")
def events():
    """Every event in every account, oldest first; ``?account=`` and ``?type=`` narrow it."""
    account, event_type = request.args.get("account"), request.args.get("type")
    found = [
        {**event, "delivery_success": standin().state.delivery_success(event["id"])}
        for _scope, event in standin().state.objects_everywhere("event")
        if account in (None, event.get("account")) and event_type in (None, event["type"])
    ]
    return jsonify(sorted(found, key=lambda e: e["created"]))


@control.post("/events/<event_id>/redeliver")
def redeliver(event_id: str):
    found = standin().state.find_object(event_id)
    if found is None or found[1].get("object") != "event":
        raise ControlError(f"No event {event_id}.", 404)
    if not standin().webhooks.enabled:
        raise ControlError("No webhook endpoint is set.", 409)
    standin().events.redeliver(found[1])
    return jsonify({"redelivering": event_id})


# -- Checkout ---------------------------------------------------------------------------------


@control.get("/checkout/sessions")
def checkout_sessions():
    """Every Checkout Session in every account, oldest first, each with its ``account``;
    ``?account=`` and ``?status=`` narrow it."""
    running = standin()
    checkout_expiry.expire_due_sessions(running)
    account, status = request.args.get("account"), request.args.get("status")
    found = [
        {**session, "account": scope}
        for scope, session in running.state.objects_everywhere(checkout.SESSION)
        if account in (None, scope) and status in (None, session["status"])
    ]
    return jsonify(sorted(found, key=lambda s: s["created"]))


def session_account(session_id: str) -> str | None:
    found = checkout_expiry.find_session(standin(), session_id)
    if found is None:
        raise ControlError(f"No Checkout Session {session_id}.", 404)
    return found[0]


@control.post("/checkout/sessions/<session_id>/expire-now")
def expire_session_now(session_id: str):
    """What the clock does at ``expires_at``: ``checkout.session.expired``."""
    account = session_account(session_id)
    try:
        return jsonify(checkout_expiry.expire(standin(), account, session_id))
    except StripeError as refused:
        raise ControlError(refused.message, 409) from None


def some_future_expiry() -> str:
    return f"12 / {(time.gmtime().tm_year + 5) % 100:02d}"


@control.post("/checkout/sessions/<session_id>/pay")
def pay_session(session_id: str):
    """Pay as the pay page would: ``card`` (a test card number), ``email``, ``name``, and
    optionally ``expiry``, ``cvc``, ``authenticate`` (for 3-D Secure cards) or
    ``delayed: true`` (a bank debit that ``settle`` decides)."""
    body = json_body()
    account = session_account(session_id)
    session = standin().state.get_object(account, session_id) or {}
    authenticate = body.get("authenticate")
    if authenticate not in (True, False, None):
        raise ControlError("'authenticate' must be true, false or absent.")
    fields = {
        "email": str(body.get("email") or session.get("customer_email") or ""),
        "name": str(body.get("name") or "Test Patient"),
        "cardnumber": str(body.get("card") or ""),
        "expiry": str(body.get("expiry") or some_future_expiry()),
        "cvc": str(body.get("cvc") or "123"),
    }
    delayed = body.get("delayed") is True
    payer, problems = read_payer(fields) if delayed else read_card(fields)
    if payer is None:
        return jsonify({"error": "The payment details are not valid.", "problems": problems}), 400
    try:
        if delayed:
            attempt = payments.pay_by_debit(standin(), account, session_id, payer, public_url())
        else:
            attempt = payments.pay_by_card(
                standin(), account, session_id, payer, public_url(), authenticate
            )
    except payments.PaymentRefused as refused:
        return jsonify({"error": refused.message, "session": refused.session}), 409
    return jsonify(attempt.as_json())


@control.post("/checkout/sessions/<session_id>/settle")
def settle_session(session_id: str):
    """The bank's answer to a delayed payment: ``{"outcome": "succeeded" | "failed"}``."""
    outcome = json_body().get("outcome")
    if outcome not in ("succeeded", "failed"):
        raise ControlError("'outcome' is 'succeeded' or 'failed'.")
    account = session_account(session_id)
    try:
        attempt = payments.settle(
            standin(), account, session_id, outcome == "succeeded", public_url()
        )
    except payments.PaymentRefused as refused:
        return jsonify({"error": refused.message, "session": refused.session}), 409
    return jsonify(attempt.as_json())
