"""The api base's ``/v1`` endpoints for accounts and events. Every call has already passed
the gateway: authenticated, decoded, scoped to its ``Stripe-Account`` and idempotent."""

import time
from fnmatch import fnmatchcase
from typing import Any

from flask import Blueprint, Response, jsonify

from sandbox.stripe.accounts import change_account, merge_metadata, platform_account
from sandbox.stripe.errors import InvalidParameter, exclusive, no_such, unknown_parameter
from sandbox.stripe.events import originating_request
from sandbox.stripe.gateway import api_params, current_account, no_access_to
from sandbox.stripe.lists import PAGING_PARAMS, list_object, whole_number
from sandbox.stripe.runtime import standin

api = Blueprint("api", __name__, url_prefix="/v1")

EVENT_RETENTION_SECONDS = 30 * 24 * 60 * 60  # Stripe lists the last 30 days of events
RANGE_OPERATORS = ("gt", "gte", "lt", "lte")


def connected_account_object(account_id: str) -> dict[str, Any]:
    """A connected account as the platform may see it.

    Stripe answers 403 ``account_invalid`` both for an account that was never connected (or
    has been disconnected) and for one that does not exist, so as not to reveal which.
    """
    running = standin()
    platform = platform_account(running.settings)
    if account_id == platform["id"]:
        return platform
    account = running.state.account(account_id)
    if account is None or not running.state.is_connected(account_id):
        raise no_access_to(account_id)
    return account


@api.get("/account")
def own_account() -> Response:
    """The account the call acts as: the connected one, or the platform's own."""
    api_params()
    account_id = current_account()
    if account_id is None:
        return jsonify(platform_account(standin().settings))
    return jsonify(connected_account_object(account_id))


@api.get("/accounts/<account_id>")
def retrieve_account(account_id: str) -> Response:
    api_params()
    return jsonify(connected_account_object(account_id))


@api.get("/accounts")
def list_accounts() -> Response:
    """The platform's connected accounts, newest first."""
    params = api_params(*PAGING_PARAMS, "created")
    state = standin().state
    connected = [a for a in state.accounts() if state.is_connected(a["id"])]
    connected = [a for a in connected if created_matches(a, params.get("created"))]
    return jsonify(list_object(connected[::-1], params, "/v1/accounts"))


@api.post("/accounts/<account_id>")
def update_account(account_id: str) -> Response:
    """Only ``metadata`` may be changed on a Standard account the platform does not control."""
    params = api_params("metadata")
    metadata = params.get("metadata", {})
    if metadata != "" and not isinstance(metadata, dict):
        raise InvalidParameter("Invalid hash", param="metadata")
    connected_account_object(account_id)
    updated = change_account(
        standin(),
        account_id,
        lambda account: merge_metadata(account, metadata),
        originating_request(),
    )
    return jsonify(updated)


@api.get("/events/<event_id>")
def retrieve_event(event_id: str) -> Response:
    api_params()
    event = standin().state.get_object(current_account(), event_id)
    if event is None or event.get("object") != "event":
        raise no_such("event", event_id)
    return jsonify(event)


@api.get("/events")
def list_events() -> Response:
    params = api_params(*PAGING_PARAMS, "type", "types", "delivery_success", "created")
    wanted = event_filter(params)
    state = standin().state
    events = [e for e in state.objects_of(current_account(), "event") if wanted(e)]
    return jsonify(list_object(events[::-1], params, "/v1/events"))


def event_filter(params: dict[str, Any]):
    types = event_types(params)
    delivered = boolean(params, "delivery_success")
    oldest = int(time.time()) - EVENT_RETENTION_SECONDS
    state = standin().state

    def wanted(event: dict[str, Any]) -> bool:
        if event["created"] < oldest or not created_matches(event, params.get("created")):
            return False
        if types and not any(fnmatchcase(event["type"], t) for t in types):
            return False
        return delivered is None or state.delivery_success(event["id"]) is delivered

    return wanted


def event_types(params: dict[str, Any]) -> list[str]:
    if params.get("type") and params.get("types"):
        raise exclusive(("type", "types"), param="types")
    if params.get("type"):
        return [str(params["type"])]
    types = params.get("types") or []
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise InvalidParameter("Invalid array", param="types")
    if len(types) > 20:
        raise InvalidParameter("You may pass up to 20 event types.", param="types")
    return types


def boolean(params: dict[str, Any], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise InvalidParameter(f"Invalid boolean: {raw}", param=name)
    return raw == "true"


def created_matches(obj: dict[str, Any], created: Any) -> bool:
    """Stripe's ``created`` filter: a timestamp, or a range of gt/gte/lt/lte."""
    return timestamp_matches(obj, "created", created)


def timestamp_matches(obj: dict[str, Any], name: str, wanted: Any) -> bool:
    """A timestamp filter (``created``, ``arrival_date``): one value, or a range."""
    if wanted is None:
        return True
    if not isinstance(wanted, dict):
        return obj[name] == whole_number({name: wanted}, name)
    unknown = set(wanted) - set(RANGE_OPERATORS)
    if unknown:
        raise unknown_parameter(f"{name}[{sorted(unknown)[0]}]")
    bounds = {op: whole_number(wanted, op) for op in wanted}
    value = obj[name]
    return (
        ("gt" not in bounds or value > bounds["gt"])
        and ("gte" not in bounds or value >= bounds["gte"])
        and ("lt" not in bounds or value < bounds["lt"])
        and ("lte" not in bounds or value <= bounds["lte"])
    )
