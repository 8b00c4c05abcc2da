"""The Jira Service Management adapter: the only code in vcpay that talks to Jira.

Every call has a timeout; the library's own retries are off (it would sleep inside a worker
for up to two minutes), so Celery owns retrying and honours ``Retry-After``. Failures come
out as ``ServiceDeskUnavailable`` (try again later) or ``ServiceDeskRefused`` (Jira said no:
configuration or data), each with a message fit for people. Longer than most modules because
it is the one door to Jira: every Jira call lives here, with the error mapping they all share.
"""

import hmac
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any
from zoneinfo import ZoneInfo

import requests
from jira import JIRA, JIRAError

from vcpay.inputs import JsonRefused, read_json

EXPERIMENTAL = {"X-ExperimentalApi": "opt-in"}
SNAPSHOT_FIELDS = ["status", "resolution", "updated", "summary"]
ALREADY_EXISTS = "already exists"


class ServiceDeskError(Exception):
    def __init__(
        self,
        message: str,
        retry_after: float | None = None,
        outcome_unknown=False,
        reason: str = "refused",
    ):
        super().__init__(message)
        self.retry_after = retry_after
        # The call may have taken effect in Jira although vcpay got no answer.
        self.outcome_unknown = outcome_unknown
        # What went wrong, as a code people are told in their language (the message, naming
        # the call, is for the log): unreachable, timeout, busy, failed, credentials, refused.
        self.reason = reason


class ServiceDeskUnavailable(ServiceDeskError):
    """Jira is down, slow or busy: the same call may work later."""


class ServiceDeskRefused(ServiceDeskError):
    """Jira refused the call: retrying unchanged will not help."""


@dataclass(frozen=True)
class RequestSnapshot:
    """What polling needs to know of one Jira request."""

    key: str
    status: str
    status_category: str
    resolution: str | None
    updated: str  # as Jira wrote it, e.g. 2026-11-27T10:00:00.123+1100

    @property
    def updated_at(self) -> datetime:
        return parse_jira_time(self.updated)


@dataclass(frozen=True)
class Approval:
    id: str
    name: str
    final_decision: str  # approved, declined or pending
    created: str


def parse_jira_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def jql_minute(moment: datetime, time_zone: str) -> str:
    """A JQL date literal: minutes only, in the searching user's time zone."""
    return moment.astimezone(ZoneInfo(time_zone)).strftime('"%Y/%m/%d %H:%M"')


def _retry_after(response: Any) -> float | None:
    value = getattr(response, "headers", {}).get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _jira_error(error: JIRAError, action: str, mutating: bool) -> ServiceDeskError:
    status = error.status_code
    if status is None:
        return ServiceDeskUnavailable(
            f"Could not reach Jira to {action}.", outcome_unknown=mutating, reason="unreachable"
        )
    if status in (429, 503):
        return ServiceDeskUnavailable(
            f"Jira is busy ({status}) and asked vcpay to wait before it tries to {action} again.",
            retry_after=_retry_after(error.response),
            reason="busy",
        )
    if status >= 500:
        return ServiceDeskUnavailable(
            f"Jira failed ({status}) while vcpay tried to {action}.",
            outcome_unknown=mutating,
            reason="failed",
        )
    if status in (401, 403):
        return ServiceDeskRefused(
            f"Jira refused vcpay's credentials ({status}) when it tried to {action}.",
            reason="credentials",
        )
    detail = (error.text or "").strip()[:200]
    return ServiceDeskRefused(f"Jira refused to {action} ({status}): {detail}")


@contextmanager
def _calling(action: str, mutating: bool = False) -> Iterator[None]:
    try:
        yield
    except JIRAError as error:
        raise _jira_error(error, action, mutating) from None
    except requests.exceptions.ConnectTimeout:
        raise ServiceDeskUnavailable(
            f"Timed out connecting to Jira to {action}.", reason="unreachable"
        ) from None
    except requests.exceptions.Timeout:
        raise ServiceDeskUnavailable(
            f"Jira did not answer in time when vcpay tried to {action}.",
            outcome_unknown=mutating,
            reason="timeout",
        ) from None
    except requests.exceptions.RequestException as error:
        raise ServiceDeskUnavailable(
            f"Could not reach Jira to {action} ({type(error).__name__}).",
            outcome_unknown=mutating,
            reason="unreachable",
        ) from None


@dataclass(frozen=True)
class ServiceDeskSettings:
    url: str
    user: str
    api_token: str
    service_desk: str
    request_type: str
    jql_filter: str
    timeout: float

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ServiceDeskSettings":
        return cls(
            url=config["JIRA_URL"].rstrip("/"),
            user=config["JIRA_USER"],
            api_token=config["JIRA_API_TOKEN"],
            service_desk=config["JIRA_SERVICE_DESK"],
            request_type=config["JIRA_REQUEST_TYPE"],
            jql_filter=config["JIRA_JQL_FILTER"],
            timeout=config["JIRA_TIMEOUT_SECONDS"],
        )

    def __repr__(self) -> str:  # never show the token
        return f"ServiceDeskSettings(url={self.url!r}, user={self.user!r})"


# One client per worker process and site: the library reads serverInfo and the field list
# once per client, so reusing it keeps each poll to the calls that matter.
_clients: dict[ServiceDeskSettings, JIRA] = {}
_lookups: dict[tuple[ServiceDeskSettings, str], Any] = {}


class ServiceDesk:
    def __init__(self, settings: ServiceDeskSettings):
        self.settings = settings

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ServiceDesk":
        return cls(ServiceDeskSettings.from_config(config))

    @property
    def client(self) -> JIRA:
        client = _clients.get(self.settings)
        if client is None:
            with _calling("connect"):
                client = JIRA(
                    server=self.settings.url,
                    basic_auth=(self.settings.user, self.settings.api_token),
                    max_retries=0,
                    timeout=self.settings.timeout,
                    get_server_info=True,
                    options={"check_update": False},
                )
            _clients[self.settings] = client
        return client

    def _cached(self, name: str, load):
        key = (self.settings, name)
        if key not in _lookups:
            _lookups[key] = load()
        return _lookups[key]

    def time_zone(self) -> str:
        """The integration user's time zone, in which Jira reads JQL dates."""

        def load() -> str:
            with _calling("read the integration user's profile"):
                return self.client.myself().get("timeZone") or "UTC"

        return self._cached("time_zone", load)

    def request_type_ids(self) -> tuple[int, int]:
        """The service desk's and request type's ids, found by name once."""

        def load() -> tuple[int, int]:
            with _calling("find the service desk"):
                desk = self.client.service_desk(self.settings.service_desk)
            with _calling("find the request type"):
                try:
                    request_type = self.client.request_type_by_name(
                        desk, self.settings.request_type
                    )
                except KeyError:
                    raise ServiceDeskRefused(
                        f"The service desk has no request type named "
                        f"{self.settings.request_type!r}."
                    ) from None
            return int(desk.id), int(request_type.id)

        return self._cached("request_type_ids", load)

    def ensure_customer(self, email: str, display_name: str) -> str:
        """The accountId of the customer with ``email``, creating the customer when missing."""
        try:
            with _calling("create the customer"):
                return self.client.create_customer(email, display_name).raw["accountId"]
        except ServiceDeskRefused as refused:
            if ALREADY_EXISTS not in str(refused).lower():
                raise
        with _calling("find the customer"):
            response = self.client._session.get(
                f"{self.settings.url}/rest/api/2/user/search", params={"query": email}
            )
        users = response.json()
        for user in users:
            if (user.get("emailAddress") or "").lower() == email.lower():
                return user["accountId"]
        if users:
            return users[0]["accountId"]
        raise ServiceDeskRefused(f"Jira has a customer for {email} but would not say who.")

    def raise_request(self, summary: str, description: str, on_behalf_of: str) -> RequestSnapshot:
        desk_id, request_type_id = self.request_type_ids()
        fields = {
            # Ints: a string request type would be looked up by name on every call.
            "serviceDeskId": desk_id,
            "requestTypeId": request_type_id,
            "requestFieldValues": {"summary": summary, "description": description},
            "raiseOnBehalfOf": on_behalf_of,
        }
        with _calling("raise the request", mutating=True):
            issue = self.client.create_customer_request(fields, prefetch=True)
        return _snapshot(issue)

    def search(
        self, jql: str, page_token: str | None = None, page_size: int = 50
    ) -> tuple[list[RequestSnapshot], str | None]:
        """One page of an enhanced JQL search, and the token of the next page if any."""
        with _calling("search for requests"):
            page = self.client.enhanced_search_issues(
                jql, nextPageToken=page_token, maxResults=page_size, fields=SNAPSHOT_FIELDS
            )
        return [_snapshot(issue) for issue in page], getattr(page, "nextPageToken", None)

    def read_request(self, key: str) -> RequestSnapshot:
        """One request read by key: straight from the issue, so never behind like search."""
        with _calling("read the request"):
            issue = self.client.issue(key, fields=",".join(SNAPSHOT_FIELDS))
        return _snapshot(issue)

    def find_by_correlation(self, correlation_id: str) -> RequestSnapshot | None:
        jql = f'{self.settings.jql_filter} AND summary ~ "{correlation_id}" ORDER BY key ASC'
        found, _next = self.search(jql, page_size=5)
        return found[0] if found else None

    def changed_since(self, moment: datetime, overlap: timedelta) -> str:
        """The JQL for requests updated since ``moment`` less ``overlap``, oldest first."""
        since = jql_minute(moment - overlap, self.time_zone())
        return f"{self.settings.jql_filter} AND updated >= {since} ORDER BY updated ASC, key ASC"

    def keys_jql(self, keys: list[str]) -> str:
        return f"key in ({', '.join(keys)}) ORDER BY key ASC"

    def _servicedesk_get(self, path: str, action: str, **params: Any) -> dict[str, Any]:
        # The library has no approvals or JSM comment calls; its session adds auth,
        # the timeout and Jira's error handling.
        with _calling(action):
            response = self.client._session.get(
                f"{self.settings.url}/rest/servicedeskapi/{path}",
                headers=EXPERIMENTAL,
                params=params or None,
            )
        return response.json()

    def approvals(self, key: str) -> list[Approval]:
        body = self._servicedesk_get(f"request/{key}/approval", "read the approvals", limit=50)
        return [
            Approval(
                id=str(value["id"]),
                name=value.get("name", ""),
                final_decision=value.get("finalDecision", "pending"),
                created=(value.get("createdDate") or {}).get("iso8601", ""),
            )
            for value in body.get("values", [])
        ]

    def public_comments(self, key: str) -> list[str]:
        body = self._servicedesk_get(
            f"request/{key}/comment", "read the comments", public="true", internal="false"
        )
        return [value.get("body", "") for value in body.get("values", [])]

    def all_comment_bodies(self, key: str) -> list[str]:
        with _calling("read the comments"):
            return [comment.body for comment in self.client.comments(key)]

    def add_public_comment(self, key: str, body: str) -> None:
        with _calling("comment on the request", mutating=True):
            self.client.add_comment(key, body, is_internal=False)


def _snapshot(issue: Any) -> RequestSnapshot:
    fields = issue.fields
    resolution = getattr(fields, "resolution", None)
    return RequestSnapshot(
        key=issue.key,
        status=fields.status.name,
        status_category=fields.status.statusCategory.key,
        resolution=getattr(resolution, "name", None) if resolution else None,
        updated=fields.updated,
    )


# PROJECT-123, within the column that keeps the keys vcpay raised.
ISSUE_KEY = re.compile(r"[A-Z][A-Z0-9_]{0,19}-[1-9][0-9]{0,18}")


class WebhookRefused(ValueError):
    """A Jira webhook that is not signed with vcpay's secret, or not an issue event."""


def changed_request_key(body: bytes, signature: str | None, secret: str) -> str | None:
    """The request key in a Jira admin webhook, once its ``X-Hub-Signature`` checks out.

    Jira signs the raw body with HMAC-SHA256 (``sha256=<hex>``). None for an event that names
    no issue. The body carries no timestamp: a replay can only ask for an early look at a
    request, which changes nothing that Jira does not say.
    """
    if not signature:
        raise WebhookRefused("No X-Hub-Signature header: vcpay only takes signed webhooks.")
    method, _, digest = signature.partition("=")
    expected = hmac.new(secret.encode(), body, sha256).hexdigest()
    if method != "sha256" or not hmac.compare_digest(digest.encode(), expected.encode()):
        raise WebhookRefused("The X-Hub-Signature does not match this body and vcpay's secret.")
    try:
        event = read_json(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise WebhookRefused("The body is not UTF-8 text.") from None
    except JsonRefused as refused:
        raise WebhookRefused(str(refused)) from None
    issue = event.get("issue") if isinstance(event, dict) else None
    key = issue.get("key") if isinstance(issue, dict) else None
    if key is None or key == "":
        return None
    if not (isinstance(key, str) and ISSUE_KEY.fullmatch(key)):
        raise WebhookRefused("The issue key is not a Jira issue key.")
    return key


def forget_clients() -> None:
    """Drop cached clients and lookups (tests switch between stand-ins)."""
    _clients.clear()
    _lookups.clear()
