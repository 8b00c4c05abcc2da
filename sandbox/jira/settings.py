"""How one stand-in instance is configured: site URL, deployment type, users and time zone."""

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from zoneinfo import ZoneInfo

DEPLOYMENT_TYPES = ("Cloud", "Server")
# vcpay's default VCPAY_JIRA_WEBHOOK_SECRET: a published sandbox value, not a secret.
SANDBOX_WEBHOOK_SECRET = "jira_webhook_vcpay_sandbox"  # noqa: S105  # nosec B105  # published


@dataclass(frozen=True)
class StandinSettings:
    # Links in responses use this; empty means "the URL the request came in on".
    public_url: str = ""
    # "Cloud" makes the jira library use /search/jql, and takes API tokens with Basic auth only;
    # "Server" (Data Center) the legacy /search, and also personal access tokens as Bearer.
    deployment_type: str = "Cloud"
    # Everyone's time zone: JQL dates are read in it and times are written in it.
    time_zone: str = "Australia/Sydney"
    state_file: str | None = None
    user_email: str = "vcpay@servicedesk.example"
    api_token: str = "sandbox-api-token"  # noqa: S105 - published sandbox value, not a secret
    user_account_id: str = "557058:vcpay-integration"
    user_display_name: str = "vcpay integration"
    # The approver: a person, so a second set of credentials.
    agent_email: str = "agent@servicedesk.example"
    agent_token: str = "sandbox-agent-token"  # noqa: S105 - published sandbox value
    agent_account_id: str = "557058:service-desk-agent"
    agent_display_name: str = "Sam Agent"
    # False: the request type's workflow has no approval step (agents move it by hand), the
    # shape vcpay's status and resolution mapping is for.
    approval_step: bool = True
    # An admin webhook: after each change the issue is POSTed here, signed with the secret.
    webhook_url: str = ""
    webhook_secret: str = field(default="", repr=False)
    webhook_retry_seconds: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
    webhook_timeout_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.deployment_type not in DEPLOYMENT_TYPES:
            raise ValueError(f"deployment_type must be one of {DEPLOYMENT_TYPES}")
        ZoneInfo(self.time_zone)  # fail at start, not on the first request
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None) -> "StandinSettings":
        config = dict(config or {})
        known = {f.name for f in fields(cls)}
        unknown = set(config) - known
        if unknown:
            raise TypeError(f"unknown Jira stand-in settings: {', '.join(sorted(unknown))}")
        return cls(**config)
