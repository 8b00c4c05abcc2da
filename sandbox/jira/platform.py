"""The Jira platform REST API (``/rest/api/2``, ``/3`` and ``latest``), the part vcpay uses."""

from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from sandbox.jira import catalog, representations, search
from sandbox.jira.clock import jira_time
from sandbox.jira.errors import Invalid, platform_error
from sandbox.jira.representations import INTERNAL_COMMENT
from sandbox.jira.runtime import int_arg, json_body, list_arg, site, standin

platform = Blueprint("platform", __name__, url_prefix="/rest/api/<any('2','3',latest):api>")

SEARCH_REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."
)


@platform.url_value_preprocessor
def remember_api_version(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    g.api = (values or {}).pop("api", "2")


def here():
    return site(g.api)


@platform.get("/serverInfo")
def server_info():
    running = standin()
    cloud = running.settings.deployment_type == "Cloud"
    base = here().base
    return jsonify(
        {
            "baseUrl": base,
            "displayUrl": base,
            "version": "1001.0.0-SNAPSHOT" if cloud else "9.12.15",
            "versionNumbers": [1001, 0, 0] if cloud else [9, 12, 15],
            "deploymentType": running.settings.deployment_type,
            "buildNumber": 100289 if cloud else 9120015,
            "buildDate": "2026-11-01T00:00:00.000+0000",
            "serverTime": jira_time(running.clock.now_ms(), running.settings.time_zone),
            "scmInfo": "vcpay-sandbox",
            "serverTitle": "Payment Gateway Service Desk (stand-in)",
        }
    )


@platform.get("/myself")
def myself():
    return jsonify(representations.user(here(), g.account))


@platform.get("/user")
def user_by_account_id():
    account = standin().state.account(request.args.get("accountId", ""))
    if account is None:
        return platform_error(404, "The user does not exist.")
    return jsonify(representations.user(here(), account))


@platform.get("/user/search")
def user_search():
    state = standin().state
    if "accountId" in request.args:
        account = state.account(request.args["accountId"])
        found = [account] if account else []
    elif request.args.get("query"):
        found = state.search_accounts(request.args["query"])
    else:
        raise Invalid("One of 'query' or 'accountId' must be given.")
    start = int_arg("startAt", 0)
    limit = int_arg("maxResults", 50, minimum=1, maximum=1000)
    return jsonify([representations.user(here(), a) for a in found[start : start + limit]])


@platform.get("/field")
def fields():
    return jsonify(representations.field_details())


@platform.get("/issue/<id_or_key>")
def issue(id_or_key: str):
    found = standin().state.request(id_or_key)
    return jsonify(
        representations.issue_bean(here(), found, search.issue_fields_param(), list_arg("expand"))
    )


@platform.get("/issue/<id_or_key>/comment")
def comments(id_or_key: str):
    found = standin().state.request(id_or_key)
    ordered = sorted(found.comments, key=lambda c: (c.created, int(c.id)))
    if request.args.get("orderBy", "created").startswith("-"):
        ordered.reverse()
    start = int_arg("startAt", 0)
    limit = int_arg("maxResults", 5000, minimum=1, maximum=5000)
    page = ordered[start : start + limit]
    return jsonify(representations.comment_page(here(), found, page, start, len(ordered), limit))


def _plain_text(body: Any) -> str:
    """v3 sends comment bodies as ADF; the stand-in keeps the text."""
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        return "\n\n".join(_plain_text(part) for part in body.get("content", [])) or body.get(
            "text", ""
        )
    return ""


def _is_internal(body: dict[str, Any]) -> bool:
    for prop in body.get("properties") or []:
        if isinstance(prop, dict) and prop.get("key") == INTERNAL_COMMENT:
            value = prop.get("value") or {}
            return bool(isinstance(value, dict) and value.get("internal"))
    # A comment restricted to a role or group is not shown to customers either.
    return bool(body.get("visibility"))


@platform.post("/issue/<id_or_key>/comment")
def add_comment(id_or_key: str):
    body = json_body()
    state = standin().state
    comment = state.add_comment(
        id_or_key, g.account, _plain_text(body.get("body")), public=not _is_internal(body)
    )
    found = state.request(id_or_key)
    return jsonify(representations.platform_comment(here(), found, comment)), 201


@platform.get("/issue/<id_or_key>/transitions")
def transitions(id_or_key: str):
    found = standin().state.request(id_or_key)
    available = catalog.transitions_from(found.status)
    wanted = request.args.get("transitionId")
    if wanted:
        available = [t for t in available if t.id == wanted]
    return jsonify(
        {
            "expand": "transitions",
            "transitions": [representations.transition(here(), t) for t in available],
        }
    )


def _transition_comment(body: dict[str, Any]) -> str:
    additions = ((body.get("update") or {}).get("comment")) or []
    return "\n\n".join(
        _plain_text((item.get("add") or {}).get("body"))
        for item in additions
        if isinstance(item, dict)
    )


def _requested_resolution(body: dict[str, Any]) -> str | None:
    wanted = (body.get("fields") or {}).get("resolution")
    if not isinstance(wanted, dict):
        return None
    by_id = {r.id: r.name for r in catalog.RESOLUTIONS.values()}
    return wanted.get("name") or by_id.get(str(wanted.get("id")), str(wanted.get("id")))


@platform.post("/issue/<id_or_key>/transitions")
def run_transition(id_or_key: str):
    body = json_body()
    transition_id = (body.get("transition") or {}).get("id")
    if not transition_id:
        raise Invalid("'transition' identifier must be specified.", field="transition")
    standin().state.run_transition(
        id_or_key,
        str(transition_id),
        g.account,
        comment=_transition_comment(body),
        resolution=_requested_resolution(body),
    )
    return Response(status=204)


@platform.route("/search/jql", methods=["GET", "POST"])
def enhanced_search():
    return jsonify(search.enhanced_search(here()))


@platform.post("/search/approximate-count")
def approximate_count():
    return jsonify(search.approximate_count())


@platform.route("/search", methods=["GET", "POST"])
def legacy_search():
    # Jira Cloud removed this search in 2025 (CHANGE-2046); Data Center still has it.
    if standin().settings.deployment_type == "Cloud":
        return platform_error(410, SEARCH_REMOVED)
    return jsonify(search.legacy_search(here()))
