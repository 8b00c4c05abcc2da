"""JQL search as Jira Cloud's enhanced search (``/search/jql``) and the legacy ``/search``.

Enhanced search pages with opaque ``nextPageToken``s, caps ``maxResults`` at 100 (5,000 when
only ids or keys are asked for), refuses unbounded queries, and may lag behind recent changes
(``/_sandbox/search-lag``).
"""

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from flask import g, request

from sandbox.jira.errors import Invalid
from sandbox.jira.jql import Context, JqlError, Query, parse_jql
from sandbox.jira.records import CustomerRequest
from sandbox.jira.representations import ALL_FIELDS, FieldSelection, issue_bean, select_fields
from sandbox.jira.runtime import json_body, list_arg, standin
from sandbox.jira.site import Site

ENHANCED_MAX_RESULTS = 100
ID_ONLY_MAX_RESULTS = 5000
ID_ONLY_FIELDS = frozenset({"id", "key"})
LEGACY_MAX_RESULTS = 1000
UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)


@dataclass
class SearchParams:
    jql: str
    fields: list[str] | None  # None: the parameter was not sent
    max_results: int
    next_page_token: str | None = None
    start_at: int = 0
    expand: list[str] = field(default_factory=list)
    reconcile_ids: set[str] = field(default_factory=set)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def _whole(value: Any, name: str, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Invalid(f"The '{name}' parameter must be a whole number.") from None


def read_params(default_max: int) -> SearchParams:
    """From the query string (GET) or the JSON body (POST), as the jira library sends them."""
    if request.method == "POST":
        body = json_body()
        raw = {k: body.get(k) for k in ("jql", "maxResults", "nextPageToken", "startAt")}
        fields = _as_list(body["fields"]) if body.get("fields") is not None else None
        expand = _as_list(body.get("expand"))
        reconcile = _as_list(body.get("reconcileIssues"))
    else:
        raw = {k: request.args.get(k) for k in ("jql", "maxResults", "nextPageToken", "startAt")}
        fields = list_arg("fields") if "fields" in request.args else None
        expand = list_arg("expand")
        reconcile = list_arg("reconcileIssues")
    max_results = _whole(raw["maxResults"], "maxResults", default_max)
    start_at = _whole(raw["startAt"], "startAt", 0)
    if max_results < 0 or start_at < 0:
        raise Invalid("'maxResults' and 'startAt' must not be negative.")
    return SearchParams(
        jql=raw["jql"] or "",
        fields=fields,
        max_results=max_results or default_max,
        next_page_token=raw["nextPageToken"] or None,
        start_at=start_at,
        expand=expand,
        reconcile_ids=set(reconcile),
    )


def run_query(jql: str, reconcile_ids: set[str], require_bounded: bool) -> list[CustomerRequest]:
    running = standin()
    context = Context(
        now=running.clock.now_ms(),
        time_zone=running.settings.time_zone,
        account=running.state.account,
        caller=g.get("account"),
    )
    try:
        query: Query = parse_jql(jql, context)
    except JqlError as error:
        raise Invalid(str(error)) from None
    if require_bounded and not query.bounded:
        raise Invalid(UNBOUNDED)
    return query.select(running.state.searchable_requests(reconcile_ids))


def _fingerprint(jql: str) -> str:
    return hashlib.sha256(jql.encode()).hexdigest()[:16]


def page_token(jql: str, offset: int) -> str:
    raw = json.dumps({"q": _fingerprint(jql), "o": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def offset_from_token(token: str, jql: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["q"] == _fingerprint(jql) and int(data["o"]) >= 0:
            return int(data["o"])
    except (ValueError, KeyError, TypeError):
        pass
    raise Invalid("The nextPageToken is not valid for this query.")


def ids_only(fields: list[str] | None) -> bool:
    """Enhanced search's default field list is ``id``; ``key`` alone is as light."""
    return fields is None or set(fields) <= ID_ONLY_FIELDS


def _issue(site: Site, found: CustomerRequest, params: SearchParams) -> dict[str, Any]:
    if ids_only(params.fields):
        light = {"id": found.issue_id}
        if params.fields and "key" in params.fields:
            light["key"] = found.key
        return light
    return issue_bean(site, found, select_fields(params.fields or []), params.expand)


def enhanced_search(site: Site) -> dict[str, Any]:
    params = read_params(50)
    cap = ID_ONLY_MAX_RESULTS if ids_only(params.fields) else ENHANCED_MAX_RESULTS
    found = run_query(params.jql, params.reconcile_ids, require_bounded=True)
    offset = offset_from_token(params.next_page_token, params.jql) if params.next_page_token else 0
    end = offset + min(params.max_results, cap)
    body: dict[str, Any] = {
        "issues": [_issue(site, r, params) for r in found[offset:end]],
        "isLast": end >= len(found),
    }
    if end < len(found):
        body["nextPageToken"] = page_token(params.jql, end)  # omitted on the last page
    return body


def legacy_search(site: Site) -> dict[str, Any]:
    params = read_params(50)
    params.max_results = min(params.max_results, LEGACY_MAX_RESULTS)
    found = run_query(params.jql, set(), require_bounded=False)
    fields = select_fields(params.fields if params.fields is not None else ["*navigable"])
    page = found[params.start_at : params.start_at + params.max_results]
    return {
        "expand": "schema,names",
        "startAt": params.start_at,
        "maxResults": params.max_results,
        "total": len(found),
        "issues": [issue_bean(site, r, fields, params.expand) for r in page],
    }


def approximate_count() -> dict[str, int]:
    jql = json_body().get("jql") or ""
    return {"count": len(run_query(jql, set(), require_bounded=True))}


def issue_fields_param() -> FieldSelection:
    """``fields`` on GET issue: all of them unless the caller names some."""
    requested = list_arg("fields")
    return select_fields(requested) if requested else ALL_FIELDS
