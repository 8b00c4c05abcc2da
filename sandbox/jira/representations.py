"""The JSON Jira answers with, built from the stand-in's records.

Shapes follow the official schemas (``CustomerRequestDTO``, ``ApprovalDTO``, ``IssueBean``...);
many forbid extra properties, so nothing here adds fields of its own. ``self`` links end the
way Jira's do, because the jira library picks resource classes by them.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from sandbox.jira import catalog
from sandbox.jira.clock import date_dto, jira_time
from sandbox.jira.records import Account, Approval, Comment, CustomerRequest, StatusChange

INTERNAL_COMMENT = "sd.public.comment"
ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
REQUEST_EXPANDS = [
    "participant",
    "status",
    "sla",
    "requestType",
    "serviceDesk",
    "attachment",
    "action",
    "comment",
]


@dataclass(frozen=True)
class Site:
    """Where links point, how times are written, and who is asking."""

    base: str
    time_zone: str
    accounts: Callable[[str], Account | None]
    api: str = "2"
    caller: Account | None = None

    def rest(self, path: str) -> str:
        return f"{self.base}/rest/api/{self.api}/{path}"

    def servicedesk(self, path: str) -> str:
        return f"{self.base}/rest/servicedeskapi/{path}"

    def browse(self, key: str) -> str:
        return f"{self.base}/browse/{key}"

    def time(self, moment: int | None) -> str | None:
        return None if moment is None else jira_time(moment, self.time_zone)

    def date(self, moment: int) -> dict[str, Any]:
        return date_dto(moment, self.time_zone)

    def rich_text(self, text: str) -> Any:
        """v2 speaks plain strings; v3 speaks Atlassian Document Format."""
        return text if self.api != "3" else adf(text)


def adf(text: str) -> dict[str, Any]:
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return {
        "type": "doc",
        "version": 1,
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": p}]} for p in paragraphs
        ],
    }


def _avatars(account: Account) -> dict[str, str]:
    # Local, so the agent page and the demo never reach out to a CDN.
    return {
        size: f"data:,{quote(account.account_id)}" for size in ("48x48", "24x24", "16x16", "32x32")
    }


def _account(site: Site, account_id: str) -> Account:
    return site.accounts(account_id) or Account(account_id, "", "Former user", "unknown")


# -- platform API -------------------------------------------------------------------------


def user_details(site: Site, account: Account) -> dict[str, Any]:
    return {
        "self": site.rest("user?" + urlencode({"accountId": account.account_id})),
        "accountId": account.account_id,
        "accountType": account.account_type,
        "emailAddress": account.email,
        "avatarUrls": _avatars(account),
        "displayName": account.display_name,
        "active": True,
        "timeZone": site.time_zone,
    }


def user(site: Site, account: Account) -> dict[str, Any]:
    """The platform ``User`` (myself, user search)."""
    return {**user_details(site, account), "locale": "en_AU"}


def status_category(site: Site, category: catalog.StatusCategory) -> dict[str, Any]:
    return {
        "self": site.rest(f"statuscategory/{category.id}"),
        "id": category.id,
        "key": category.key,
        "colorName": category.color_name,
        "name": category.name,
    }


def status(site: Site, status: catalog.Status) -> dict[str, Any]:
    return {
        "self": site.rest(f"status/{status.id}"),
        "description": status.description,
        "iconUrl": f"{site.base}/images/icons/statuses/generic.png",
        "name": status.name,
        "id": status.id,
        "statusCategory": status_category(site, status.category),
    }


def resolution(site: Site, name: str | None) -> dict[str, Any] | None:
    if name is None:
        return None
    found = catalog.RESOLUTIONS[name]
    return {
        "self": site.rest(f"resolution/{found.id}"),
        "id": found.id,
        "description": found.description,
        "name": found.name,
    }


def priority(site: Site, found: catalog.Priority) -> dict[str, Any]:
    return {
        "self": site.rest(f"priority/{found.id}"),
        "iconUrl": f"{site.base}/images/icons/priorities/{found.name.lower()}.svg",
        "name": found.name,
        "id": found.id,
    }


def issue_type(site: Site) -> dict[str, Any]:
    it = catalog.SERVICE_REQUEST_WITH_APPROVALS
    return {
        "self": site.rest(f"issuetype/{it.id}"),
        "id": it.id,
        "description": it.description,
        "iconUrl": f"{site.base}/images/icons/issuetypes/request.png",
        "name": it.name,
        "subtask": False,
        "hierarchyLevel": 0,
    }


def project(site: Site) -> dict[str, Any]:
    desk = catalog.PAYMENT_DESK
    return {
        "self": site.rest(f"project/{desk.project_id}"),
        "id": desk.project_id,
        "key": desk.project_key,
        "name": desk.project_name,
        "projectTypeKey": "service_desk",
        "simplified": False,
    }


def request_links(site: Site, request: CustomerRequest) -> dict[str, str]:
    return {
        "jiraRest": f"{site.base}/rest/api/2/issue/{request.issue_id}",
        "web": site.browse(request.key),
        "self": site.servicedesk(f"request/{request.issue_id}"),
        "agent": site.browse(request.key),
    }


def current_status(site: Site, request: CustomerRequest) -> dict[str, Any]:
    found = catalog.STATUSES[request.status]
    return {
        "status": found.name,
        "statusCategory": found.category.jsm_name,
        "statusDate": site.date(request.status_history[-1].at),
    }


def request_type_value(site: Site, request: CustomerRequest) -> dict[str, Any]:
    """The value of the Request Type custom field on the platform issue."""
    request_type = next(rt for rt in catalog.REQUEST_TYPES if rt.id == request.request_type_id)
    return {
        "_links": request_links(site, request),
        "requestType": request_type_dto(site, request_type),
        "currentStatus": current_status(site, request),
    }


def platform_comment(site: Site, request: CustomerRequest, comment: Comment) -> dict[str, Any]:
    author = user_details(site, _account(site, comment.author_id))
    return {
        "self": site.rest(f"issue/{request.issue_id}/comment/{comment.id}"),
        "id": comment.id,
        "author": author,
        "body": site.rich_text(comment.body),
        "updateAuthor": author,
        "created": site.time(comment.created),
        "updated": site.time(comment.created),
        "jsdPublic": comment.public,
    }


def comment_page(
    site: Site,
    request: CustomerRequest,
    comments: list[Comment],
    start: int,
    total: int,
    limit: int,
) -> dict[str, Any]:
    return {
        "comments": [platform_comment(site, request, c) for c in comments],
        "self": site.rest(f"issue/{request.issue_id}/comment"),
        "maxResults": limit,
        "total": total,
        "startAt": start,
    }


def issue_fields(site: Site, request: CustomerRequest) -> dict[str, Any]:
    found = catalog.STATUSES[request.status]
    comments = request.comments
    return {
        "summary": request.summary,
        "description": site.rich_text(request.description) if request.description else None,
        "status": status(site, found),
        "statuscategorychangedate": site.time(request.status_history[-1].at),
        "resolution": resolution(site, request.resolution),
        "resolutiondate": site.time(request.resolved),
        "issuetype": issue_type(site),
        "project": project(site),
        "reporter": user_details(site, _account(site, request.reporter_id)),
        "creator": user_details(site, _account(site, request.creator_id)),
        "assignee": None,
        "priority": priority(site, catalog.PRIORITIES[catalog.REQUEST_PRIORITY]),
        "labels": [],
        "created": site.time(request.created),
        "updated": site.time(request.updated),
        "comment": comment_page(site, request, comments, 0, len(comments), len(comments)),
        catalog.REQUEST_TYPE_FIELD: request_type_value(site, request),
    }


@dataclass(frozen=True)
class FieldSelection:
    """Jira's ``fields`` parameter: ids, ``*all``/``*navigable``, and ``-id`` to leave one out."""

    every: bool
    named: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()

    def includes(self, name: str) -> bool:
        return name not in self.excluded and (self.every or name in self.named)


ALL_FIELDS = FieldSelection(every=True)


def select_fields(requested: Iterable[str]) -> FieldSelection:
    """``-description`` alone means every (default) field but the description."""
    names = [name.strip() for name in requested if name.strip()]
    named = frozenset(n for n in names if not n.startswith(("-", "*")))
    excluded = frozenset(n[1:] for n in names if n.startswith("-"))
    return FieldSelection(
        every=any(name in ("*all", "*navigable") for name in names) or bool(excluded and not named),
        named=named,
        excluded=excluded,
    )


def issue_bean(
    site: Site, request: CustomerRequest, fields: FieldSelection, expand: Iterable[str] = ()
) -> dict[str, Any]:
    every_field = issue_fields(site, request)
    bean: dict[str, Any] = {
        "expand": ISSUE_EXPAND,
        "id": request.issue_id,
        "self": site.rest(f"issue/{request.issue_id}"),
        "key": request.key,
        "fields": {name: value for name, value in every_field.items() if fields.includes(name)},
    }
    if "names" in expand:
        names = {field_id: name for field_id, name, _clauses, _schema in catalog.FIELDS}
        bean["names"] = {name: names.get(name, name) for name in bean["fields"]}
    return bean


def transition(site: Site, found: catalog.Transition) -> dict[str, Any]:
    return {
        "id": found.id,
        "name": found.name,
        "to": status(site, catalog.STATUSES[found.target]),
        "hasScreen": False,
        "isGlobal": False,
        "isInitial": False,
        "isAvailable": True,
        "isConditional": False,
        "isLooped": False,
    }


def field_details() -> list[dict[str, Any]]:
    return [
        {
            "id": field_id,
            "key": field_id,
            "name": name,
            "custom": field_id.startswith("customfield_"),
            "orderable": field_id not in ("issuekey", "statusCategory", "created", "updated"),
            "navigable": True,
            "searchable": True,
            "clauseNames": clauses,
            "schema": schema,
        }
        for field_id, name, clauses, schema in catalog.FIELDS
    ]


# -- servicedeskapi ----------------------------------------------------------------------


def user_dto(site: Site, account: Account) -> dict[str, Any]:
    return {
        "accountId": account.account_id,
        "emailAddress": account.email,
        "displayName": account.display_name,
        "active": True,
        "timeZone": site.time_zone,
        "_links": {
            "jiraRest": f"{site.base}/rest/api/2/user?"
            + urlencode({"accountId": account.account_id}),
            "avatarUrls": _avatars(account),
            "self": f"{site.base}/rest/api/2/user?" + urlencode({"accountId": account.account_id}),
        },
    }


def service_desk_dto(site: Site, desk: catalog.ServiceDesk) -> dict[str, Any]:
    return {
        "id": desk.id,
        "projectId": desk.project_id,
        "projectName": desk.project_name,
        "projectKey": desk.project_key,
        "_links": {"self": site.servicedesk(f"servicedesk/{desk.id}")},
    }


def request_type_dto(site: Site, rt: catalog.RequestType) -> dict[str, Any]:
    return {
        "_links": {
            "self": site.servicedesk(f"servicedesk/{rt.service_desk_id}/requesttype/{rt.id}")
        },
        "id": rt.id,
        "name": rt.name,
        "description": rt.description,
        "helpText": rt.help_text,
        "issueTypeId": rt.issue_type_id,
        "serviceDeskId": rt.service_desk_id,
        "portalId": rt.service_desk_id,
        "groupIds": list(rt.group_ids),
        "icon": {"id": "10500", "_links": {"iconUrls": {}}},
        "practice": "service-request",
    }


def request_type_fields() -> dict[str, Any]:
    return {
        "requestTypeFields": [
            {
                "fieldId": "summary",
                "name": "Summary",
                "description": "What the request is about.",
                "required": True,
                "defaultValues": [],
                "validValues": [],
                "jiraSchema": {"type": "string", "system": "summary"},
                "visible": True,
            },
            {
                "fieldId": "description",
                "name": "Description",
                "description": "The clinics to enable and anything the service desk should know.",
                "required": False,
                "defaultValues": [],
                "validValues": [],
                "jiraSchema": {"type": "string", "system": "description"},
                "visible": True,
            },
        ],
        "canRaiseOnBehalfOf": True,
        "canAddRequestParticipants": True,
    }


def comment_dto(site: Site, request: CustomerRequest, comment: Comment) -> dict[str, Any]:
    return {
        "_expands": ["attachment", "renderedBody"],
        "id": comment.id,
        "body": comment.body,
        "public": comment.public,
        "author": user_dto(site, _account(site, comment.author_id)),
        "created": site.date(comment.created),
        "_links": {"self": site.servicedesk(f"request/{request.issue_id}/comment/{comment.id}")},
    }


def approval_dto(site: Site, request: CustomerRequest, approval: Approval) -> dict[str, Any]:
    caller_id = site.caller.account_id if site.caller else None
    can_answer = approval.final_decision == "pending" and any(
        a.account_id == caller_id and a.decision == "pending" for a in approval.approvers
    )
    body: dict[str, Any] = {
        "id": approval.id,
        "name": approval.name,
        "finalDecision": approval.final_decision,
        "canAnswerApproval": can_answer,
        "approvers": [
            {
                "approver": user_dto(site, _account(site, a.account_id)),
                "approverDecision": a.decision,
            }
            for a in approval.approvers
        ],
        "createdDate": site.date(approval.created),
        "_links": {"self": site.servicedesk(f"request/{request.issue_id}/approval/{approval.id}")},
    }
    if approval.completed is not None:
        body["completedDate"] = site.date(approval.completed)
    return body


def status_change_dto(site: Site, change: StatusChange) -> dict[str, Any]:
    return {
        "status": change.status,
        "statusCategory": catalog.STATUSES[change.status].category.jsm_name,
        "statusDate": site.date(change.at),
    }


def paged(
    site: Site, path: str, values: list[Any], start: int, limit: int, query: dict | None = None
) -> dict[str, Any]:
    """A JSM page: ``values[start:start+limit]`` with its links."""
    page = values[start : start + limit]
    query = dict(query or {})

    def link(at: int) -> str:
        return site.servicedesk(path) + "?" + urlencode({**query, "start": at, "limit": limit})

    links = {"base": f"{site.base}/rest/servicedeskapi", "context": "", "self": link(start)}
    if start + limit < len(values):
        links["next"] = link(start + limit)
    if start > 0:
        links["prev"] = link(max(0, start - limit))
    return {
        "_expands": [],
        "size": len(page),
        "start": start,
        "limit": limit,
        "isLastPage": start + limit >= len(values),
        "values": page,
        "_links": links,
    }


def customer_request_dto(
    site: Site, request: CustomerRequest, expand: Iterable[str] = ()
) -> dict[str, Any]:
    expand = set(expand)
    body: dict[str, Any] = {
        "_expands": REQUEST_EXPANDS,
        "issueId": request.issue_id,
        "issueKey": request.key,
        "requestTypeId": request.request_type_id,
        "serviceDeskId": request.service_desk_id,
        "createdDate": site.date(request.created),
        "reporter": user_dto(site, _account(site, request.reporter_id)),
        "requestFieldValues": [
            {"fieldId": "summary", "label": "Summary", "value": request.summary},
            {"fieldId": "description", "label": "Description", "value": request.description},
        ],
        "currentStatus": current_status(site, request),
        "_links": request_links(site, request),
    }
    request_type = next(rt for rt in catalog.REQUEST_TYPES if rt.id == request.request_type_id)
    desk = catalog.find_service_desk(request.service_desk_id)
    if "requestType" in expand:
        body["requestType"] = request_type_dto(site, request_type)
    if "serviceDesk" in expand and desk:
        body["serviceDesk"] = service_desk_dto(site, desk)
    if "status" in expand:
        history = [status_change_dto(site, c) for c in reversed(request.status_history)]
        body["status"] = paged(site, f"request/{request.issue_id}/status", history, 0, 50)
    if "comment" in expand:
        comments = [comment_dto(site, request, c) for c in request.comments if c.public]
        body["comments"] = paged(site, f"request/{request.issue_id}/comment", comments, 0, 50)
    if "participant" in expand:
        body["participants"] = paged(site, f"request/{request.issue_id}/participant", [], 0, 50)
    return body
