"""The stand-in's memory: accounts and customer requests, changed only under one lock.

Every change ends in ``_commit``, which stores a frozen copy of the request. Readers get those
copies, so rendering needs no lock, and search can show an older copy to model Jira Cloud's
eventually consistent search.

Over 300 lines on purpose: it is one class whose every change takes the same lock and ends in
the same commit; split, the lock and the copies would have to cross modules.
"""

import copy
import json
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from sandbox.common.files import write_atomically
from sandbox.jira import catalog
from sandbox.jira.clock import Clock, Millis
from sandbox.jira.errors import Conflict, Forbidden, Invalid, NotFound
from sandbox.jira.records import (
    Account,
    Approval,
    Approver,
    Comment,
    CustomerRequest,
    StatusChange,
)
from sandbox.jira.settings import StandinSettings

FIRST_ISSUE_ID = 10001
FIRST_COMMENT_ID = 10100
VERSIONS_KEPT = 20  # per request, for search lag; older ones are never shown
DECISIONS = {"approve": "approved", "decline": "declined"}


class JiraState:
    def __init__(self, settings: StandinSettings, clock: Clock):
        self.settings = settings
        self.clock = clock
        self._lock = threading.RLock()
        self.search_lag_seconds = 0.0
        # Told of every change, still under the lock so that changes are told in order.
        self.on_change: Callable[[str, CustomerRequest], None] | None = None
        self._state_file = Path(settings.state_file) if settings.state_file else None
        self._seed()
        if self._state_file and self._state_file.exists():
            self._load()

    # -- accounts -------------------------------------------------------------------------

    def _seed(self) -> None:
        s = self.settings
        self.integration_user = Account(
            s.user_account_id, s.user_email, s.user_display_name, "atlassian"
        )
        self.agent = Account(s.agent_account_id, s.agent_email, s.agent_display_name, "atlassian")
        self._accounts: dict[str, Account] = {
            a.account_id: a for a in (self.integration_user, self.agent)
        }
        self._requests: dict[str, CustomerRequest] = {}
        self._versions: dict[str, list[CustomerRequest]] = {}
        self._keys_by_id: dict[str, str] = {}
        self._next_number = 1
        self._next_issue_id = FIRST_ISSUE_ID
        self._next_comment_id = FIRST_COMMENT_ID

    def reset(self) -> None:
        with self._lock:
            self._seed()
            self.search_lag_seconds = 0.0
            self._save()

    def account_for_token(self, email: str | None, token: str) -> Account | None:
        """Basic auth sends email and API token; Bearer (a Data Center PAT) the token alone."""
        s = self.settings
        for account, account_token in (
            (self.integration_user, s.api_token),
            (self.agent, s.agent_token),
        ):
            same_token = secrets.compare_digest(token.encode(), account_token.encode())
            if same_token and (email is None or email.lower() == account.email.lower()):
                return account
        return None

    def account(self, account_id: str) -> Account | None:
        return self._accounts.get(account_id)

    def find_account(self, account_id_or_email: str) -> Account | None:
        wanted = account_id_or_email.strip().lower()
        with self._lock:
            for account in self._accounts.values():
                if wanted in (account.account_id.lower(), account.email.lower()):
                    return account
        return None

    def search_accounts(self, query: str) -> list[Account]:
        """Jira matches the start of the email address, the display name or one of its words."""
        query = query.strip().lower()
        with self._lock:
            accounts = list(self._accounts.values())
        return [
            a
            for a in accounts
            if a.email.lower().startswith(query)
            or a.display_name.lower().startswith(query)
            or any(word.startswith(query) for word in a.display_name.lower().split())
        ]

    def create_customer(self, email: str, display_name: str) -> Account:
        email = email.strip()
        if "@" not in email or email.startswith("@") or email.endswith("@"):
            raise Invalid(f"The email address '{email}' is not valid.")
        with self._lock:
            if self.find_account(email):
                raise Conflict("An account already exists for this email")
            customer = Account(
                f"qm:{uuid.uuid4()}", email, display_name.strip() or email, "customer"
            )
            self._accounts[customer.account_id] = customer
            self._save()
            return customer

    # -- requests -------------------------------------------------------------------------

    def create_request(
        self,
        creator: Account,
        request_type: catalog.RequestType,
        summary: str,
        description: str,
        reporter: Account,
        save: bool = True,
    ) -> CustomerRequest:
        with self._lock:
            now = self.clock.now_ms()
            number = self._next_number
            approvals = [
                Approval("1", catalog.APPROVAL_NAME, [Approver(self.agent.account_id)], now)
            ]
            if not self.settings.approval_step:
                approvals = []
            first = catalog.WAITING_FOR_APPROVAL if approvals else catalog.STATUS_IN_PROGRESS
            request = CustomerRequest(
                issue_id=str(self._next_issue_id),
                key=f"{catalog.PAYMENT_DESK.project_key}-{number}",
                number=number,
                service_desk_id=request_type.service_desk_id,
                request_type_id=request_type.id,
                summary=summary,
                description=description,
                reporter_id=reporter.account_id,
                creator_id=creator.account_id,
                status=first.name,
                created=now,
                updated=now,
                status_history=[StatusChange(first.name, now)],
                approvals=approvals,
            )
            self._next_number += 1
            self._next_issue_id += 1
            self._requests[request.key] = request
            self._keys_by_id[request.issue_id] = request.key
            self._commit(request, save, "jira:issue_created")
            return self._versions[request.key][-1]

    def save(self) -> None:
        with self._lock:
            self._save()

    def request(self, id_or_key: str) -> CustomerRequest:
        """The current version of a request (a frozen copy: do not change it)."""
        with self._lock:
            return self._versions[self._key_of(id_or_key)][-1]

    def requests(self) -> list[CustomerRequest]:
        with self._lock:
            return [versions[-1] for versions in self._versions.values()]

    def searchable_requests(self, reconcile_ids: set[str] | None = None) -> list[CustomerRequest]:
        """What search sees: each request as it was ``search_lag_seconds`` ago, if it existed.

        Ids in ``reconcile_ids`` are read after write, as Jira's ``reconcileIssues`` promises.
        """
        reconcile_ids = reconcile_ids or set()
        with self._lock:
            cutoff = self.clock.now_ms() - int(self.search_lag_seconds * 1000)
            found = []
            for versions in self._versions.values():
                if versions[-1].issue_id in reconcile_ids or not self.search_lag_seconds:
                    found.append(versions[-1])
                    continue
                visible = [v for v in versions if v.updated <= cutoff]
                if visible:
                    found.append(visible[-1])
            return found

    def add_comment(self, id_or_key: str, author: Account, body: str, public: bool) -> Comment:
        if not body.strip():
            raise Invalid("Comment body can not be empty!", field="comment")
        with self._lock:
            request = self._working(id_or_key)
            now = self.clock.now_ms()
            comment = self._append_comment(request, author, body, public, now)
            request.updated = now
            self._commit(request, event="comment_created")
            return copy.deepcopy(comment)

    def decide(
        self, id_or_key: str, approval_id: str, by: Account, decision: str, reason: str = ""
    ) -> Approval:
        """Answer an approval as ``by``; the workflow then approves or declines the request."""
        if decision not in DECISIONS:
            raise Invalid("The decision must be 'approve' or 'decline'.")
        with self._lock:
            request = self._working(id_or_key)
            approval = request.approval(approval_id)
            if approval is None:
                raise NotFound(f"The approval {approval_id} does not exist on {request.key}.")
            approver = approval.approver(by.account_id)
            if approver is None:
                raise Forbidden("You are not an approver of this request.")
            if approval.final_decision != "pending" or approver.decision != "pending":
                raise Conflict("This approval has already been answered.")
            now = self.clock.now_ms()
            approver.decision = approval.final_decision = DECISIONS[decision]
            approval.completed = now
            if decision == "approve":
                self._move(request, catalog.APPROVED, "Done", now)
            else:
                self._move(request, catalog.DECLINED, "Declined", now)
            if reason.strip():
                self._append_comment(request, by, reason.strip(), True, now)
            request.updated = now
            self._commit(request)
            return copy.deepcopy(approval)

    def run_transition(
        self,
        id_or_key: str,
        transition_id: str,
        by: Account,
        comment: str = "",
        resolution: str | None = None,
    ) -> CustomerRequest:
        """A manual transition; the approval, if pending, stays pending."""
        with self._lock:
            request = self._working(id_or_key)
            transition = next(
                (t for t in catalog.transitions_from(request.status) if t.id == str(transition_id)),
                None,
            )
            if transition is None:
                raise Invalid(
                    f"Transition id '{transition_id}' is not valid for this issue.",
                )
            target = catalog.STATUSES[transition.target]
            if resolution is not None and resolution not in catalog.RESOLUTIONS:
                raise Invalid(f"The resolution '{resolution}' does not exist.", field="resolution")
            if target.category is not catalog.DONE:
                resolution = None
            now = self.clock.now_ms()
            self._move(request, target, resolution or transition.resolution, now)
            if comment.strip():
                self._append_comment(request, by, comment.strip(), True, now)
            request.updated = now
            self._commit(request)
            return self._versions[request.key][-1]

    def move_to(self, id_or_key: str, status_name: str, by: Account) -> CustomerRequest:
        """Run whichever manual transition leads from the current status to ``status_name``."""
        current = self.request(id_or_key)
        for transition in catalog.transitions_from(current.status):
            if transition.target.lower() == status_name.strip().lower():
                return self.run_transition(current.key, transition.id, by)
        raise Invalid(f"No transition leads from '{current.status}' to '{status_name}'.")

    # -- internals ------------------------------------------------------------------------

    def _key_of(self, id_or_key: str) -> str:
        key = self._keys_by_id.get(id_or_key, id_or_key.upper())
        if key not in self._requests:
            raise NotFound("Issue does not exist or you do not have permission to see it.")
        return key

    def _working(self, id_or_key: str) -> CustomerRequest:
        return self._requests[self._key_of(id_or_key)]

    def _append_comment(
        self, request: CustomerRequest, author: Account, body: str, public: bool, now: Millis
    ) -> Comment:
        comment = Comment(str(self._next_comment_id), author.account_id, body, public, now)
        self._next_comment_id += 1
        request.comments.append(comment)
        return comment

    def _move(
        self, request: CustomerRequest, status: catalog.Status, resolution: str | None, now: Millis
    ) -> None:
        request.status = status.name
        request.status_history.append(StatusChange(status.name, now))
        request.resolution = resolution
        request.resolved = now if resolution else None

    def _commit(
        self, request: CustomerRequest, save: bool = True, event: str = "jira:issue_updated"
    ) -> None:
        versions = self._versions.setdefault(request.key, [])
        versions.append(copy.deepcopy(request))
        del versions[:-VERSIONS_KEPT]
        if save:
            self._save()
        if self.on_change is not None:
            self.on_change(event, versions[-1])

    # -- persistence ----------------------------------------------------------------------

    def _save(self) -> None:
        if not self._state_file:
            return
        data = {
            "customers": [
                asdict(a) for a in self._accounts.values() if a.account_type == "customer"
            ],
            "requests": [r.to_dict() for r in self._requests.values()],
            "next_number": self._next_number,
            "next_issue_id": self._next_issue_id,
            "next_comment_id": self._next_comment_id,
        }
        write_atomically(self._state_file, json.dumps(data).encode())

    def _load(self) -> None:
        data = json.loads(self._state_file.read_text(encoding="utf-8"))
        for customer in data.get("customers", []):
            account = Account(**customer)
            self._accounts[account.account_id] = account
        for raw in data.get("requests", []):
            request = CustomerRequest.from_dict(raw)
            self._requests[request.key] = request
            self._keys_by_id[request.issue_id] = request.key
            self._versions[request.key] = [copy.deepcopy(request)]
        self._next_number = data.get("next_number", self._next_number)
        self._next_issue_id = data.get("next_issue_id", self._next_issue_id)
        self._next_comment_id = data.get("next_comment_id", self._next_comment_id)
