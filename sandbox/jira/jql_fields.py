"""The JQL fields of the stand-in's site: every field its own ``/rest/api/2/field`` lists,
under each of its clause names, and what each means for a customer request; and the fields
it orders by. The kinds of field are in ``jql_terms``."""

import re
from collections.abc import Callable

from sandbox.jira import catalog
from sandbox.jira.jql_terms import (
    ChoiceField,
    Context,
    DateField,
    JqlError,
    OptionalField,
    TextField,
    UserField,
    user_names,
)
from sandbox.jira.jql_terms import lower as _lower
from sandbox.jira.records import CustomerRequest

ISSUE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*-\d+$")


def _status(r: CustomerRequest) -> catalog.Status:
    return catalog.STATUSES[r.status]


def _request_type_names(rt: catalog.RequestType) -> set[str]:
    return _lower(rt.id, rt.name, f"{rt.name} ({catalog.PAYMENT_DESK.project_key})")


def _resolution_names(r: CustomerRequest, _context: Context) -> set[str]:
    if r.resolution is None:
        return {"unresolved"}  # Jira's name for "no resolution" in JQL
    return _lower(r.resolution, catalog.RESOLUTIONS[r.resolution].id)


ALL_STATUS_NAMES = set().union(*(_lower(s.name, s.id) for s in catalog.STATUSES.values()))
ALL_CATEGORY_NAMES = set().union(
    *(_lower(c.key, c.name, str(c.id)) for c in catalog.STATUS_CATEGORIES)
)
ALL_RESOLUTION_NAMES = set().union(
    *(_lower(r.name, r.id) for r in catalog.RESOLUTIONS.values())
) | {"unresolved"}
ALL_PRIORITY_NAMES = set().union(*(_lower(p.name, p.id) for p in catalog.PRIORITIES.values()))
ALL_REQUEST_TYPE_NAMES = set().union(*(_request_type_names(rt) for rt in catalog.REQUEST_TYPES))
DESK = catalog.PAYMENT_DESK
ISSUE_TYPE = catalog.SERVICE_REQUEST_WITH_APPROVALS
REQUEST_PRIORITY = catalog.PRIORITIES[catalog.REQUEST_PRIORITY]

FIELDS = {
    "project": ChoiceField(
        "project",
        lambda r, c: _lower(DESK.project_key, DESK.project_id, DESK.project_name),
        lambda v: v.lower() in _lower(DESK.project_key, DESK.project_id, DESK.project_name),
    ),
    "issuetype": ChoiceField(
        "issuetype",
        lambda r, c: _lower(ISSUE_TYPE.id, ISSUE_TYPE.name),
        lambda v: v.lower() in _lower(ISSUE_TYPE.id, ISSUE_TYPE.name),
    ),
    "key": ChoiceField(
        "key",
        lambda r, c: _lower(r.key, r.issue_id),
        lambda v: bool(ISSUE_KEY.match(v)) or v.isdigit(),
    ),
    "status": ChoiceField(
        "status",
        lambda r, c: _lower(r.status, _status(r).id),
        lambda v: v.lower() in ALL_STATUS_NAMES,
    ),
    "statuscategory": ChoiceField(
        "statusCategory",
        lambda r, c: _lower(
            _status(r).category.key, _status(r).category.name, str(_status(r).category.id)
        ),
        lambda v: v.lower() in ALL_CATEGORY_NAMES,
    ),
    "resolution": ChoiceField(
        "resolution",
        _resolution_names,
        lambda v: v.lower() in ALL_RESOLUTION_NAMES,
        is_empty=lambda r: r.resolution is None,
    ),
    "priority": ChoiceField(
        "priority",
        lambda r, c: _lower(REQUEST_PRIORITY.name, REQUEST_PRIORITY.id),
        lambda v: v.lower() in ALL_PRIORITY_NAMES,
    ),
    "reporter": UserField("reporter", user_names(lambda r: r.reporter_id), bool),
    "creator": UserField("creator", user_names(lambda r: r.creator_id), bool),
    # Requests are raised unassigned and the stand-in never assigns them.
    "assignee": UserField("assignee", user_names(lambda r: None), bool, is_empty=lambda r: True),
    # Nor does it label them.
    "labels": OptionalField(
        "labels", lambda r, c: set(), lambda v: bool(v.strip()), is_empty=lambda r: True
    ),
    "request type": ChoiceField(
        "Request Type",
        lambda r, c: next(
            _request_type_names(rt) for rt in catalog.REQUEST_TYPES if rt.id == r.request_type_id
        ),
        lambda v: v.lower() in ALL_REQUEST_TYPE_NAMES,
    ),
    "summary": TextField("summary", lambda r: r.summary),
    "description": TextField("description", lambda r: r.description),
    "comment": TextField("comment", lambda r: "\n".join(c.body for c in r.comments)),
    "text": TextField(
        "text", lambda r: "\n".join([r.summary, r.description, *(c.body for c in r.comments)])
    ),
    "updated": DateField("updated", lambda r: r.updated),
    "created": DateField("created", lambda r: r.created),
    "resolved": DateField("resolved", lambda r: r.resolved),
    "statuscategorychangeddate": DateField(
        "statusCategoryChangedDate", lambda r: r.status_history[-1].at
    ),
}
FIELD_ALIASES = {
    "type": "issuetype",
    "issuekey": "key",
    "id": "key",
    "issue": "key",
    "customer request type": "request type",
    "request type[request type]": "request type",
    "cf[10010]": "request type",
    "updateddate": "updated",
    "createddate": "created",
    "resolutiondate": "resolved",
}
SORT_FIELDS = {
    "updated": "updated",
    "updateddate": "updated",
    "created": "created",
    "createddate": "created",
    "resolved": "resolved",
    "resolutiondate": "resolved",
    "key": "key",
    "issuekey": "key",
    "id": "key",
    "summary": "summary",
    "status": "status",
}
SORT_KEYS: dict[str, Callable[[CustomerRequest], object]] = {
    "updated": lambda r: r.updated,
    "created": lambda r: r.created,
    "resolved": lambda r: r.resolved if r.resolved is not None else float("inf"),
    "key": lambda r: r.number,  # PAY-2 before PAY-10
    "summary": lambda r: r.summary.lower(),
    "status": lambda r: r.status.lower(),
}


def resolve_field(name: str):
    lowered = name.strip().lower()
    field = FIELDS.get(FIELD_ALIASES.get(lowered, lowered))
    if field is None:
        raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")
    return field
