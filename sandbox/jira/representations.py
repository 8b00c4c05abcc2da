"""The JSON Jira's platform API answers with (``/rest/api/2`` and ``3``), built from the
stand-in's records.

Shapes follow the official schemas (``IssueBean``, ``User``, ``PageOfComments``...); many
forbid extra properties, so nothing here adds fields of its own. ``self`` links end the way
Jira's do, because the jira library picks resource classes by them. The servicedeskapi's DTOs
are in ``dtos``.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sandbox.jira import catalog
from sandbox.jira.dtos import request_type_dto
from sandbox.jira.records import Account, Comment, CustomerRequest
from sandbox.jira.site import Site, account_of, avatars, current_status, request_links

INTERNAL_COMMENT = "sd.public.comment"
ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"


def user_details(site: Site, account: Account) -> dict[str, Any]:
    return {
        "self": site.rest("user?" + urlencode({"accountId": account.account_id})),
        "accountId": account.account_id,
        "accountType": account.account_type,
        "emailAddress": account.email,
        "avatarUrls": avatars(account),
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


def request_type_value(site: Site, request: CustomerRequest) -> dict[str, Any]:
    """The value of the Request Type custom field on the platform issue."""
    request_type = next(rt for rt in catalog.REQUEST_TYPES if rt.id == request.request_type_id)
    return {
        "_links": request_links(site, request),
        "requestType": request_type_dto(site, request_type),
        "currentStatus": current_status(site, request),
    }


def platform_comment(site: Site, request: CustomerRequest, comment: Comment) -> dict[str, Any]:
    author = user_details(site, account_of(site, comment.author_id))
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
        "reporter": user_details(site, account_of(site, request.reporter_id)),
        "creator": user_details(site, account_of(site, request.creator_id)),
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
