"""The fixed configuration of the stand-in's Jira site: one service desk, one request type,
and the workflow statuses, resolutions and fields that vcpay reads.

Ids follow Jira Cloud's defaults where Jira has them (status category ids, the JSM
resolutions), so that anything copied from a real site looks familiar.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class StatusCategory:
    id: int
    key: str  # the platform API's lower-case key
    name: str
    color_name: str

    @property
    def jsm_name(self) -> str:
        """The servicedeskapi spells categories in capitals (NEW, INDETERMINATE, DONE)."""
        return {"new": "NEW", "indeterminate": "INDETERMINATE", "done": "DONE"}.get(
            self.key, "UNDEFINED"
        )


TO_DO = StatusCategory(2, "new", "To Do", "blue-gray")
IN_PROGRESS = StatusCategory(4, "indeterminate", "In Progress", "yellow")
DONE = StatusCategory(3, "done", "Done", "green")
STATUS_CATEGORIES = (TO_DO, IN_PROGRESS, DONE)


@dataclass(frozen=True)
class Status:
    id: str
    name: str
    category: StatusCategory
    description: str


WAITING_FOR_APPROVAL = Status(
    "10010", "Waiting for approval", IN_PROGRESS, "The request waits for the approver."
)
STATUS_IN_PROGRESS = Status("3", "In Progress", IN_PROGRESS, "An agent is working on it.")
APPROVED = Status("10011", "Approved", DONE, "The approver approved the request.")
DECLINED = Status("10012", "Declined", DONE, "The approver declined the request.")
RESOLVED = Status("5", "Resolved", DONE, "An agent resolved the request.")
STATUSES = {
    s.name: s for s in (WAITING_FOR_APPROVAL, STATUS_IN_PROGRESS, APPROVED, DECLINED, RESOLVED)
}


@dataclass(frozen=True)
class Resolution:
    id: str
    name: str
    description: str


RESOLUTIONS = {
    r.name: r
    for r in (
        Resolution("10000", "Done", "Work has been completed on this issue."),
        Resolution("10001", "Won't Do", "This issue won't be actioned."),
        Resolution("10003", "Declined", "This issue was not approved."),
    )
}


@dataclass(frozen=True)
class Priority:
    id: str
    name: str


PRIORITIES = {
    p.name: p
    for p in (
        Priority("1", "Highest"),
        Priority("2", "High"),
        Priority("3", "Medium"),
        Priority("4", "Low"),
        Priority("5", "Lowest"),
    )
}
REQUEST_PRIORITY = "Medium"  # Jira's default, which every request keeps here


@dataclass(frozen=True)
class Transition:
    """A manual workflow transition an agent (or the platform API) may run."""

    id: str
    name: str
    sources: tuple[str, ...]
    target: str
    resolution: str | None  # set on arrival; None clears it


MANUAL_TRANSITIONS = (
    Transition("21", "Move to In Progress", ("Waiting for approval",), "In Progress", None),
    Transition("31", "Resolve", ("Waiting for approval", "In Progress"), "Resolved", "Done"),
    Transition("41", "Reopen", ("Approved", "Declined", "Resolved"), "In Progress", None),
)


@dataclass(frozen=True)
class ServiceDesk:
    id: str
    project_id: str
    project_key: str
    project_name: str


@dataclass(frozen=True)
class IssueType:
    id: str
    name: str
    description: str


@dataclass(frozen=True)
class RequestType:
    id: str
    name: str
    description: str
    help_text: str
    issue_type_id: str
    service_desk_id: str
    group_ids: tuple[str, ...]


PAYMENT_DESK = ServiceDesk("1", "10000", "PAY", "Payment Gateway Service Desk")
SERVICE_REQUEST_WITH_APPROVALS = IssueType(
    "10004", "Service Request with Approvals", "Requests that need an approval before work."
)
ENABLE_PAYMENT_GATEWAY = RequestType(
    id="10",
    name="Enable Payment Gateway",
    description="Ask for the Payment Gateway app to be enabled for your clinics.",
    help_text="Only the organisation's authorised telehealth manager may raise this request.",
    issue_type_id="10004",
    service_desk_id="1",
    group_ids=("1",),
)
SERVICE_DESKS = (PAYMENT_DESK,)
REQUEST_TYPES = (ENABLE_PAYMENT_GATEWAY,)
APPROVAL_NAME = "Gateway approval"

# The request type lives in a custom field; JQL reaches it under several names.
REQUEST_TYPE_FIELD = "customfield_10010"
REQUEST_TYPE_CLAUSES = ("Request Type", "Customer Request Type", "cf[10010]")

# (id, name, clause names, schema) of the fields /rest/api/2/field lists.
FIELDS = (
    ("issuekey", "Key", ["id", "issue", "issuekey", "key"], {"type": "string"}),
    ("summary", "Summary", ["summary"], {"type": "string", "system": "summary"}),
    ("description", "Description", ["description"], {"type": "string", "system": "description"}),
    ("status", "Status", ["status"], {"type": "status", "system": "status"}),
    ("statusCategory", "Status Category", ["statusCategory"], {"type": "statusCategory"}),
    ("resolution", "Resolution", ["resolution"], {"type": "resolution", "system": "resolution"}),
    ("resolutiondate", "Resolved", ["resolutiondate", "resolved"], {"type": "datetime"}),
    (
        "issuetype",
        "Issue Type",
        ["issuetype", "type"],
        {"type": "issuetype", "system": "issuetype"},
    ),
    ("project", "Project", ["project"], {"type": "project", "system": "project"}),
    ("reporter", "Reporter", ["reporter"], {"type": "user", "system": "reporter"}),
    ("creator", "Creator", ["creator"], {"type": "user", "system": "creator"}),
    ("assignee", "Assignee", ["assignee"], {"type": "user", "system": "assignee"}),
    ("priority", "Priority", ["priority"], {"type": "priority", "system": "priority"}),
    ("labels", "Labels", ["labels"], {"type": "array", "items": "string", "system": "labels"}),
    (
        "statuscategorychangedate",
        "Status Category Changed",
        ["statusCategoryChangedDate"],
        {"type": "datetime", "system": "statuscategorychangedate"},
    ),
    ("created", "Created", ["created", "createdDate"], {"type": "datetime", "system": "created"}),
    ("updated", "Updated", ["updated", "updatedDate"], {"type": "datetime", "system": "updated"}),
    ("comment", "Comment", ["comment"], {"type": "comments-page", "system": "comment"}),
    (
        REQUEST_TYPE_FIELD,
        "Request Type",
        [*REQUEST_TYPE_CLAUSES, "Request Type[Request Type]"],
        {
            "type": "sd-customerrequesttype",
            "custom": "com.atlassian.servicedesk:vp-origin",
            "customId": 10010,
        },
    ),
)


def transitions_from(status_name: str) -> list[Transition]:
    return [t for t in MANUAL_TRANSITIONS if status_name in t.sources]


def find_service_desk(id_or_key: str) -> ServiceDesk | None:
    """Jira accepts the desk id, or its project's id or key."""
    for desk in SERVICE_DESKS:
        if id_or_key in (desk.id, desk.project_id) or id_or_key.upper() == desk.project_key:
            return desk
    return None


def request_types_of(desk: ServiceDesk) -> list[RequestType]:
    return [rt for rt in REQUEST_TYPES if rt.service_desk_id == desk.id]
