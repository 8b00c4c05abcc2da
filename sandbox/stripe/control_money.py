"""``/_sandbox`` controls for money after a payment: funds made available, payouts run and
decided, refunds that wait or fail. What Stripe's clock and the banks decide, on request."""

import time

from flask import Blueprint, jsonify, request

from sandbox.stripe import balance, history, off_session, payouts, refund_outcomes, refunds
from sandbox.stripe.cards import TEST_CARDS, fingerprint
from sandbox.stripe.control import ControlError, json_body, refused
from sandbox.stripe.runtime import public_url, standin

money_control = Blueprint("money_control", __name__, url_prefix="/_sandbox")
money_control.register_error_handler(ControlError, refused)
ARRIVALS = ("now", "later")
REFUND_STARTS = ("succeeded", "pending")


@money_control.errorhandler(payouts.PayoutRefused)
def payout_refused(error: payouts.PayoutRefused):
    return jsonify({"error": error.message}), 409


@money_control.errorhandler(refund_outcomes.RefundRefused)
def refund_refused(error: refund_outcomes.RefundRefused):
    return jsonify({"error": error.message}), error.status


def test_account(account_id: str) -> str:
    if standin().state.account(account_id) is None:
        raise ControlError(f"No test account {account_id}.", 404)
    return account_id


@money_control.post("/accounts/<account_id>/balance/settle")
def settle_balance(account_id: str):
    """Every pending balance transaction of the account becomes available now."""
    made = balance.make_due_available(standin(), test_account(account_id), now=float("inf"))
    return jsonify({"made_available": made})


@money_control.post("/accounts/<account_id>/payouts")
def pay_out(account_id: str):
    """A payout of the available balance now: ``{"arrive": "now"}`` (the default: paid at
    once), ``"later"`` (in transit until ``/payouts/<id>/paid``), or ``{"fail": code}``."""
    body = json_body()
    arrive, failure = body.get("arrive", "now"), body.get("fail")
    if arrive not in ARRIVALS:
        raise ControlError("'arrive' is 'now' or 'later'.")
    if failure is not None and failure not in payouts.FAILURES:
        raise ControlError(f"'fail' is one of {', '.join(payouts.FAILURES)}.")
    arrival = int(time.time()) if arrive == "now" else None
    made = payouts.pay_out(standin(), test_account(account_id), arrival, failure)
    return jsonify(made), 201


@money_control.post("/accounts/<account_id>/history")
def past_payments(account_id: str):
    """Payments, refunds and weekly payouts from before anyone was watching, dated in the
    past and sending no webhooks: ``{"payments": [{key, amount, description, email, name,
    created, card, refunds: [{amount, created, reason}]}, ...]}`` (see ``history``)."""
    try:
        payments = history.read_history(json_body(), int(time.time()))
    except history.HistoryRefused as refused_history:
        raise ControlError(str(refused_history)) from None
    account = test_account(account_id)
    return jsonify(history.write_history(standin(), account, payments, public_url())), 201


@money_control.get("/payouts")
def all_payouts():
    """Every payout in every account, oldest first, each with its ``account``;
    ``?account=`` and ``?status=`` narrow it."""
    account, status = request.args.get("account"), request.args.get("status")
    found = [
        {**payout, "account": scope}
        for scope, payout in standin().state.objects_everywhere(payouts.PAYOUT)
        if account in (None, scope) and status in (None, payout["status"])
    ]
    return jsonify(sorted(found, key=lambda p: p["created"]))


def payout_account(payout_id: str) -> str | None:
    found = standin().state.find_object(payout_id)
    if found is None or found[1].get("object") != payouts.PAYOUT:
        raise ControlError(f"No payout {payout_id}.", 404)
    return found[0]


@money_control.post("/payouts/<payout_id>/paid")
def payout_paid(payout_id: str):
    return jsonify(payouts.mark_paid(standin(), payout_account(payout_id), payout_id))


@money_control.post("/payouts/<payout_id>/failed")
def payout_failed(payout_id: str):
    """``{"failure_code": "account_closed"}`` (the default) or another of Stripe's codes."""
    code = json_body().get("failure_code", "account_closed")
    if code not in payouts.FAILURES:
        raise ControlError(f"'failure_code' is one of {', '.join(payouts.FAILURES)}.")
    return jsonify(payouts.fail(standin(), payout_account(payout_id), payout_id, code))


@money_control.route("/accounts/<account_id>/behaviour", methods=["GET", "POST"])
def behaviour(account_id: str):
    """How the account's new refunds start: ``{"refunds": "pending" | "succeeded"}``."""
    running, account = standin(), test_account(account_id)
    if request.method == "POST":
        start = json_body().get("refunds", "succeeded")
        if start not in REFUND_STARTS:
            raise ControlError("'refunds' is 'succeeded' or 'pending'.")
        refunds.set_refunds_start(running, account, start)
    return jsonify({"refunds": refunds.refunds_start(running, account)})


@money_control.post("/refunds/<refund_id>/succeed")
def refund_succeeded(refund_id: str):
    return jsonify(refund_outcomes.succeed(standin(), refund_id))


@money_control.post("/refunds/<refund_id>/fail")
def refund_failed(refund_id: str):
    """``{"reason": "expired_or_canceled_card"}`` (the default) or another failure reason."""
    reason = json_body().get("reason", "expired_or_canceled_card")
    return jsonify(refund_outcomes.fail(standin(), refund_id, str(reason)))


@money_control.post("/payment_intents/<payment_intent_id>/authenticate")
def authenticate_payment(payment_intent_id: str):
    """The customer's answer on the 3-D Secure page of a PaymentIntent in
    ``requires_action``: ``{"completed": true}`` (the default) or ``false``. Gives the
    PaymentIntent and ``next_url``, the ``return_url`` with the outcome."""
    completed = json_body().get("completed", True)
    if completed not in (True, False):
        raise ControlError("'completed' must be true or false.")
    found = standin().state.find_object(payment_intent_id)
    if found is None or found[1].get("object") != "payment_intent":
        raise ControlError(f"No PaymentIntent {payment_intent_id}.", 404)
    try:
        payment_intent, next_url = off_session.authenticated(
            standin(), found[0], payment_intent_id, completed, public_url()
        )
    except LookupError:
        raise ControlError("This PaymentIntent is not waiting for authentication.", 409) from None
    return jsonify({"payment_intent": payment_intent, "next_url": next_url})


@money_control.post("/payment_methods/<method_id>/behaves-as")
def card_behaves_as(method_id: str):
    """From now on, charging this saved card does what the test card ``{"card": "4000..."}``
    does (a card saved fine that later has insufficient funds, or has expired)."""
    number = str(json_body().get("card") or "")
    if not any(card.number == number for card in TEST_CARDS):
        raise ControlError("'card' must be one of the test card numbers.")
    found = standin().state.find_object(method_id)
    if found is None or found[1].get("object") != "payment_method":
        raise ControlError(f"No PaymentMethod {method_id}.", 404)
    instead = {"id": f"{method_id}/behaves-as", "object": off_session.BEHAVES_AS}
    standin().state.put_object(found[0], {**instead, "fingerprint": fingerprint(number)})
    return jsonify({"payment_method": method_id, "behaves_as": number})
