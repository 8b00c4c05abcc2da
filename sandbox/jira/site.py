"""Where a stand-in's links point, how it writes times and rich text, and the pieces the
platform API and the servicedeskapi both show (avatars, a request's links and status)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sandbox.jira import catalog
from sandbox.jira.clock import date_dto, jira_time
from sandbox.jira.records import Account, CustomerRequest


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


def avatars(account: Account) -> dict[str, str]:
    # Local, so the agent page and the demo never reach out to a CDN.
    return {
        size: f"data:,{quote(account.account_id)}" for size in ("48x48", "24x24", "16x16", "32x32")
    }


def account_of(site: Site, account_id: str) -> Account:
    return site.accounts(account_id) or Account(account_id, "", "Former user", "unknown")


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
