"""What the stand-in remembers: accounts and customer requests with their approval,
comments and status history. Times are epoch milliseconds."""

from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.jira.clock import Millis


@dataclass(frozen=True)
class Account:
    account_id: str
    email: str
    display_name: str
    account_type: str  # "atlassian" for agents and the integration user, "customer" otherwise


@dataclass
class Comment:
    id: str
    author_id: str
    body: str
    public: bool
    created: Millis


@dataclass
class StatusChange:
    status: str
    at: Millis


@dataclass
class Approver:
    account_id: str
    decision: str = "pending"


@dataclass
class Approval:
    id: str
    name: str
    approvers: list[Approver]
    created: Millis
    final_decision: str = "pending"  # approved, declined or pending, as the JSM API spells it
    completed: Millis | None = None

    def approver(self, account_id: str) -> Approver | None:
        return next((a for a in self.approvers if a.account_id == account_id), None)


@dataclass
class CustomerRequest:
    issue_id: str
    key: str
    number: int
    service_desk_id: str
    request_type_id: str
    summary: str
    description: str
    reporter_id: str
    creator_id: str
    status: str
    created: Millis
    updated: Millis
    resolution: str | None = None
    resolved: Millis | None = None
    status_history: list[StatusChange] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)

    def approval(self, approval_id: str) -> Approval | None:
        return next((a for a in self.approvals if a.id == approval_id), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CustomerRequest":
        approvals = [
            Approval(**{**a, "approvers": [Approver(**p) for p in a["approvers"]]})
            for a in data["approvals"]
        ]
        return cls(
            **{
                **data,
                "status_history": [StatusChange(**s) for s in data["status_history"]],
                "approvals": approvals,
                "comments": [Comment(**c) for c in data["comments"]],
            }
        )
