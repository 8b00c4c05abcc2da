"""``/v1/balance_transactions`` and ``/v1/payouts`` on the connected account named by
``Stripe-Account``: read-only, as the stand-in makes them itself (``balance``,
``payouts``). Newest first, with Stripe's paging and filters."""

from typing import Any

from flask import Blueprint, Response, jsonify
from stripe.params import (
    BalanceTransactionListParams,
    BalanceTransactionRetrieveParams,
    PayoutListParams,
    PayoutRetrieveParams,
)

from sandbox.stripe import balance
from sandbox.stripe.api import created_matches, timestamp_matches
from sandbox.stripe.errors import InvalidParameter, no_such
from sandbox.stripe.expand import expanded
from sandbox.stripe.gateway import api_params, current_account
from sandbox.stripe.lists import list_object
from sandbox.stripe.params import names
from sandbox.stripe.payouts import PAYOUT
from sandbox.stripe.runtime import standin

balance_api = Blueprint("balance_api", __name__, url_prefix="/v1")

PAYOUT_STATUSES = ("pending", "paid", "failed", "canceled", "in_transit")


def shown(obj: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    return expanded(standin(), current_account(), obj, params)


def one_of(kind: str, object_id: str) -> dict[str, Any]:
    if kind == balance.TRANSACTION:
        balance.make_due_available(standin(), current_account())
    found = standin().state.get_object(current_account(), object_id)
    if found is None or found.get("object") != kind:
        raise no_such(kind, object_id)
    return found


@balance_api.get("/balance_transactions/<transaction_id>")
def retrieve_balance_transaction(transaction_id: str) -> Response:
    params = api_params(*names(BalanceTransactionRetrieveParams))
    return jsonify(shown(one_of(balance.TRANSACTION, transaction_id), params))


@balance_api.get("/balance_transactions")
def list_balance_transactions() -> Response:
    params = api_params(*names(BalanceTransactionListParams))
    running, account = standin(), current_account()
    carried_by = None
    if params.get("payout"):
        payout_id = str(params["payout"])
        found = running.state.get_object(account, payout_id)
        if found is None or found.get("object") != PAYOUT:
            raise no_such(PAYOUT, payout_id, param="payout")
        links = balance.payout_links(running, account)
        carried_by = {txn for txn, payout in links.items() if payout == payout_id}
    found = [
        t
        for t in balance.transactions(running, account)
        if created_matches(t, params.get("created"))
        and all(params.get(f) in (None, t[f]) for f in ("type", "source", "currency"))
        and (carried_by is None or t["id"] in carried_by)
    ]
    page = list_object(found[::-1], params, "/v1/balance_transactions")
    return jsonify(shown(page, params))


@balance_api.get("/payouts/<payout_id>")
def retrieve_payout(payout_id: str) -> Response:
    params = api_params(*names(PayoutRetrieveParams))
    return jsonify(shown(one_of(PAYOUT, payout_id), params))


@balance_api.get("/payouts")
def list_payouts() -> Response:
    params = api_params(*names(PayoutListParams))
    status = params.get("status")
    if status is not None and status not in PAYOUT_STATUSES:
        raise InvalidParameter(
            f"Invalid status: must be one of {', '.join(PAYOUT_STATUSES)}", param="status"
        )
    found = [
        p
        for p in standin().state.objects_of(current_account(), PAYOUT)
        if created_matches(p, params.get("created"))
        and timestamp_matches(p, "arrival_date", params.get("arrival_date"))
        and status in (None, p["status"])
        and params.get("destination") in (None, p["destination"])
    ]
    return jsonify(shown(list_object(found[::-1], params, "/v1/payouts"), params))
