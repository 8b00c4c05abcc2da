"""``/v1/checkout/sessions``: create, retrieve, list, expire and line items, on the connected
account named by ``Stripe-Account``."""

from typing import Any

from flask import Blueprint, Response, jsonify
from stripe.params.checkout import (
    SessionCreateParams,
    SessionExpireParams,
    SessionListLineItemsParams,
    SessionListParams,
    SessionRetrieveParams,
)

from sandbox.stripe import checkout, checkout_expiry, checkout_setup
from sandbox.stripe.api import created_matches
from sandbox.stripe.errors import InvalidParameter
from sandbox.stripe.expand import expanded
from sandbox.stripe.gateway import api_params, current_account
from sandbox.stripe.lists import list_object
from sandbox.stripe.params import names
from sandbox.stripe.runtime import public_url, standin

checkout_api = Blueprint("checkout_api", __name__, url_prefix="/v1/checkout/sessions")

STATUSES = ("open", "complete", "expired")


def shown(session: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    account = current_account()
    extras = {"line_items": checkout.line_items(standin(), account, session["id"])}
    return expanded(standin(), account, session, params, extras)


@checkout_api.post("")
def create_session() -> Response:
    params = api_params(*names(SessionCreateParams))
    create = checkout_setup.new_setup_session if params.get("mode") == "setup" else None
    session = (create or checkout.new_session)(standin(), current_account(), params, public_url())
    return jsonify(shown(session, params))


@checkout_api.get("/<session_id>")
def retrieve_session(session_id: str) -> Response:
    params = api_params(*names(SessionRetrieveParams))
    session = checkout_expiry.session_in(standin(), current_account(), session_id)
    return jsonify(shown(session, params))


@checkout_api.post("/<session_id>/expire")
def expire_session(session_id: str) -> Response:
    params = api_params(*names(SessionExpireParams))
    checkout_expiry.session_in(standin(), current_account(), session_id)
    expired = checkout_expiry.expire(standin(), current_account(), session_id)
    return jsonify(shown(expired, params))


@checkout_api.get("/<session_id>/line_items")
def session_line_items(session_id: str) -> Response:
    params = api_params(*names(SessionListLineItemsParams))
    checkout_expiry.session_in(standin(), current_account(), session_id)
    items = checkout.line_items(standin(), current_account(), session_id)
    return jsonify(list_object(items["data"], params, items["url"]))


@checkout_api.get("")
def list_sessions() -> Response:
    params = api_params(*names(SessionListParams))
    running, account = standin(), current_account()
    checkout_expiry.expire_due_sessions(running)
    wanted = session_filter(params)
    sessions = [s for s in running.state.objects_of(account, checkout.SESSION) if wanted(s)]
    listing = list_object(sessions[::-1], params, "/v1/checkout/sessions")
    return jsonify(expanded(running, account, listing, params))


def session_filter(params: dict[str, Any]):
    unsupported = {"customer_account", "payment_link", "subscription"} & set(params)
    if unsupported:
        name = sorted(unsupported)[0]
        raise InvalidParameter(
            f"The Stripe stand-in does not filter Checkout Sessions by {name}.", param=name
        )
    status = params.get("status")
    if status is not None and status not in STATUSES:
        raise InvalidParameter(f"Invalid status: must be one of {', '.join(STATUSES)}", "status")
    details = params.get("customer_details") or {}
    if not isinstance(details, dict) or set(details) - {"email"}:
        raise InvalidParameter("customer_details takes only email.", param="customer_details")

    def wanted(session: dict[str, Any]) -> bool:
        if status is not None and session["status"] != status:
            return False
        if params.get("payment_intent") and session["payment_intent"] != params["payment_intent"]:
            return False
        if params.get("customer") and session["customer"] != params["customer"]:
            return False
        if "email" in details:
            email = (session["customer_details"] or {}).get("email")
            if email != details["email"]:
                return False
        return created_matches(session, params.get("created"))

    return wanted
