"""``/_sandbox``: what tests and benchmarks use to set the stand-in up and look inside.

Nothing here needs credentials, and none of it is in the call log.
"""

from typing import Any

from flask import Blueprint, jsonify, request

from sandbox.common.faults import add_fault_routes
from sandbox.jira import catalog
from sandbox.jira.clock import jira_time
from sandbox.jira.errors import Invalid
from sandbox.jira.records import Account, CustomerRequest
from sandbox.jira.runtime import json_body, site, standin

control = Blueprint("control", __name__, url_prefix="/_sandbox")
add_fault_routes(control, lambda: standin().faults, lambda: standin().calls)


BULK_LIMIT = 5000


def request_summary(found: CustomerRequest) -> dict[str, Any]:
    """One request as tests want to see it: flat, with times in Jira's format."""
    here = site()
    state = standin().state
    reporter = state.account(found.reporter_id)
    approval = found.approvals[0] if found.approvals else None
    return {
        "key": found.key,
        "id": found.issue_id,
        "summary": found.summary,
        "description": found.description,
        "status": found.status,
        "statusCategory": catalog.STATUSES[found.status].category.key,
        "resolution": found.resolution,
        "reporter": {
            "accountId": found.reporter_id,
            "emailAddress": reporter.email if reporter else None,
            "displayName": reporter.display_name if reporter else None,
        },
        "approval": None
        if approval is None
        else {"id": approval.id, "name": approval.name, "finalDecision": approval.final_decision},
        "comments": [
            {
                "id": c.id,
                "author": c.author_id,
                "body": c.body,
                "public": c.public,
                "created": here.time(c.created),
            }
            for c in found.comments
        ],
        "created": here.time(found.created),
        "updated": here.time(found.updated),
    }


def _number(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"'{name}' must be a number.")
    return float(value)


@control.post("/reset")
def reset():
    standin().reset()
    return jsonify({"reset": True})


@control.route("/search-lag", methods=["GET", "POST"])
def search_lag():
    state = standin().state
    if request.method == "POST":
        seconds = _number(json_body(), "seconds")
        if seconds < 0:
            raise Invalid("'seconds' must not be negative.")
        state.search_lag_seconds = seconds
    return jsonify({"seconds": state.search_lag_seconds})


@control.route("/clock", methods=["GET", "POST"])
def clock():
    running = standin()
    if request.method == "POST":
        running.clock.shift_to(_number(json_body(), "offset_seconds"))
    return jsonify(
        {
            "offset_seconds": running.clock.offset_seconds,
            "now": jira_time(running.clock.now_ms(), running.settings.time_zone),
        }
    )


@control.get("/requests")
def requests_():
    found = sorted(standin().state.requests(), key=lambda r: r.number)
    return jsonify([request_summary(r) for r in found])


@control.get("/requests/<key>")
def one_request(key: str):
    return jsonify(request_summary(standin().state.request(key)))


@control.post("/requests/<key>/decide")
def decide(key: str):
    body = json_body()
    state = standin().state
    found = state.request(key)
    if not found.approvals:
        raise Invalid(f"{found.key} has no approval.")
    decision = str(body.get("decision") or "")
    state.decide(key, found.approvals[0].id, state.agent, decision, str(body.get("comment") or ""))
    return jsonify(request_summary(state.request(key)))


@control.post("/requests/<key>/move")
def move(key: str):
    state = standin().state
    moved = state.move_to(key, str(json_body().get("status") or ""), state.agent)
    return jsonify(request_summary(moved))


def _customer(email: str, display_name: str) -> tuple[Account, bool]:
    state = standin().state
    existing = state.find_account(email)
    if existing:
        return existing, False
    return state.create_customer(email, display_name), True


@control.post("/customers")
def create_customer():
    body = json_body()
    email = str(body.get("email") or "")
    customer, created = _customer(email, str(body.get("displayName") or email))
    return jsonify(
        {
            "accountId": customer.account_id,
            "email": customer.email,
            "displayName": customer.display_name,
        }
    ), (201 if created else 200)


@control.post("/bulk")
def bulk():
    """Many requests at once, raised by the integration user for one customer."""
    body = json_body()
    count = body.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= BULK_LIMIT:
        raise Invalid(f"'count' must be a whole number from 1 to {BULK_LIMIT}.")
    state = standin().state
    customer, _created = _customer(
        str(body.get("customer_email") or "bulk.customer@clinic.example"),
        str(body.get("customer_name") or "Bulk Customer"),
    )
    prefix = str(body.get("summary_prefix") or "Enable Payment Gateway")
    description = str(body.get("description") or "")
    keys = []
    for number in range(1, count + 1):
        created = state.create_request(
            state.integration_user,
            catalog.ENABLE_PAYMENT_GATEWAY,
            f"{prefix} {number}",
            description,
            customer,
            save=False,
        )
        keys.append(created.key)
    state.save()
    return jsonify({"keys": keys, "customer": customer.account_id}), 201


@control.get("/webhooks")
def webhooks():
    sender = standin().webhooks
    return jsonify(
        {
            "url": sender.endpoint.url,
            "signed": bool(sender.endpoint.secret),
            "attempts": sender.attempts(),
        }
    )


@control.put("/webhooks")
def configure_webhooks():
    """Where to send the admin webhook, and its secret (empty: unsigned, as Jira allows)."""
    body = json_body()
    url, secret = body.get("url", ""), body.get("secret", "")
    if not isinstance(url, str) or not isinstance(secret, str):
        raise Invalid("'url' and 'secret' must be strings.")
    standin().webhooks.configure(url, secret)
    return webhooks()


@control.post("/webhooks/wait")
def wait_for_webhooks():
    """Answer once every queued delivery (retries included) has been made, or time is up."""
    seconds = _number(json_body(), "seconds")
    return jsonify({"idle": standin().webhooks.wait_idle(min(seconds, 60.0))})
