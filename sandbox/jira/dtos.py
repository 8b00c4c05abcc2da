"""The JSON the servicedeskapi answers with (``/rest/servicedeskapi``): the DTOs of the
official JSM schema (``CustomerRequestDTO``, ``ApprovalDTO``, ``CommentDTO``...), most of which
forbid extra properties, and its pages (``PagedDTO*``)."""

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from sandbox.jira import catalog
from sandbox.jira.records import Account, Approval, Comment, CustomerRequest, StatusChange
from sandbox.jira.site import Site, account_of, avatars, current_status, request_links

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
            "avatarUrls": avatars(account),
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
        "author": user_dto(site, account_of(site, comment.author_id)),
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
                "approver": user_dto(site, account_of(site, a.account_id)),
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
        "reporter": user_dto(site, account_of(site, request.reporter_id)),
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
