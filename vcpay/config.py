"""Settings from the environment, with embedded defaults that need no external server.

Every setting is declared once in ``SETTINGS``; the README's configuration table lists the
same names and a test keeps the two in step. Longer than most modules because it is that one
table: splitting it would scatter the settings a deployer reads in one place.
"""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from vcpay.public_urls import LOCAL_HOSTS, is_local


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _names(value: str) -> tuple[str, ...]:
    """A comma-separated list of Jira status or resolution names."""
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _count(value: str) -> int:
    count = int(value)
    if count < 0:
        raise ValueError(f"expected 0 or more, got {value!r}")
    return count


def _days(value: str) -> int:
    days = int(value)
    if days < 1:
        raise ValueError(f"expected 1 or more days, got {value!r}")
    return days


ENVIRONMENTS = ("development", "production")


def _minutes(value: str) -> int:
    minutes = int(value)
    if minutes < 1:
        raise ValueError(f"expected 1 or more, got {value!r}")
    return minutes


def _time_zone(value: str) -> str:
    """An IANA time zone name that this machine's zone database knows."""
    if value not in available_timezones():
        raise ValueError(f"expected an IANA time zone such as Australia/Sydney, got {value!r}")
    return value


def _log_format(value: str) -> str:
    from vcpay.observability.logs import log_format

    return log_format(value)


# A bearer token anyone may try as often as they like must be too long to guess.
MIN_TOKEN_LENGTH = 32


def _token(value: str) -> str:
    if value and len(value) < MIN_TOKEN_LENGTH:
        raise ValueError(f"expected at least {MIN_TOKEN_LENGTH} random characters")
    return value


def _positive(value: str) -> int:
    seconds = int(value)
    if seconds < 1:
        raise ValueError(f"expected 1 or more seconds, got {value!r}")
    return seconds


def _environment(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in ENVIRONMENTS:
        raise ValueError(f"expected one of {', '.join(ENVIRONMENTS)}, got {value!r}")
    return lowered


@dataclass(frozen=True)
class Setting:
    env: str
    key: str
    default: Any
    cast: Any = str
    secret: bool = False
    # For a secret whose default is published with a stand-in: the setting of the service it
    # is for. The published default applies only while that service is on this machine.
    service: str | None = None


# Published with the stand-ins (anyone can read them here): good for `make run`, never where
# a real Stripe, a real Jira or real people are involved.
SANDBOX_STRIPE_SECRET_KEY = "sk_test_vcpay_sandbox"  # noqa: S105  # nosec B105  # published
SANDBOX_STRIPE_WEBHOOK_SECRET = "whsec_vcpay_sandbox"  # noqa: S105  # nosec B105  # published
SANDBOX_JIRA_API_TOKEN = "sandbox-api-token"  # noqa: S105  # nosec B105  # published
SANDBOX_JIRA_WEBHOOK_SECRET = "jira_webhook_vcpay_sandbox"  # noqa: S105  # nosec B105  # published
# Example keys from tutorials and templates: as good as published.
WELL_KNOWN_SECRET_KEYS = frozenset({"dev", "development", "secret", "change-me", "changeme"})

# Defaults that depend on the instance folder are filled in by ``load_settings``.
SETTINGS = [
    Setting("VCPAY_ENV", "ENVIRONMENT", "development", _environment),
    Setting("VCPAY_SECRET_KEY", "SECRET_KEY", None, secret=True),
    Setting("VCPAY_DATABASE_URL", "SQLALCHEMY_DATABASE_URI", None, secret=True),
    # PostgreSQL only (SQLite keeps SQLAlchemy's own pool): connections each web or worker
    # process keeps open, how many more it may open at a peak, and after how long one is
    # replaced (before a proxy or firewall in between drops it unseen).
    Setting("VCPAY_DATABASE_POOL_SIZE", "DATABASE_POOL_SIZE", 5, _count),
    Setting("VCPAY_DATABASE_MAX_OVERFLOW", "DATABASE_MAX_OVERFLOW", 10, _count),
    Setting("VCPAY_DATABASE_POOL_RECYCLE_SECONDS", "DATABASE_POOL_RECYCLE_SECONDS", 1800, _count),
    Setting("VCPAY_CELERY_BROKER_URL", "CELERY_BROKER_URL", None, secret=True),
    Setting("VCPAY_REDIS_URL", "REDIS_URL", "", secret=True),
    Setting("VCPAY_PUBLIC_URL", "PUBLIC_URL", "http://127.0.0.1:5000"),
    Setting("VCPAY_COOKIE_SECURE", "SESSION_COOKIE_SECURE", None, _bool),
    # Proxies in front of vcpay whose X-Forwarded-For, -Proto and -Host are believed: sign-in
    # limits and stream caps count the client's address, not the proxy's.
    Setting("VCPAY_TRUSTED_PROXIES", "TRUSTED_PROXIES", 0, _count),
    Setting("VCPAY_SESSION_HOURS", "SESSION_HOURS", 12, int),
    # A sign-in of someone holding an admin role ends after this many minutes without a page.
    Setting("VCPAY_ADMIN_IDLE_MINUTES", "ADMIN_IDLE_MINUTES", 30, _minutes),
    # Email a person when they sign in from a browser that has not signed in to them before.
    Setting("VCPAY_NEW_BROWSER_EMAILS", "NEW_BROWSER_EMAILS", "true", _bool),
    # How long an invitation's link lets its person join an organisation or clinic.
    Setting("VCPAY_INVITATION_DAYS", "INVITATION_DAYS", 30, _days),
    # Refused sign-ins only; vcpay/auth/throttling.py says how the three work together.
    Setting("VCPAY_LOGIN_RATE_LIMIT", "LOGIN_RATE_LIMIT", "10 per minute"),
    Setting("VCPAY_LOGIN_ACCOUNT_RATE_LIMIT", "LOGIN_ACCOUNT_RATE_LIMIT", "5 per 5 minutes"),
    Setting("VCPAY_LOGIN_NEW_DEVICE_RATE_LIMIT", "LOGIN_NEW_DEVICE_RATE_LIMIT", "30 per hour"),
    # Wrong two-factor codes (or recovery codes), counted per account.
    Setting("VCPAY_TWO_FACTOR_RATE_LIMIT", "TWO_FACTOR_RATE_LIMIT", "5 per 15 minutes"),
    # "Forgot password" requests, each counted: from one address, and for one email address.
    Setting("VCPAY_FORGOT_PASSWORD_RATE_LIMIT", "FORGOT_PASSWORD_RATE_LIMIT", "10 per hour"),
    Setting(
        "VCPAY_FORGOT_PASSWORD_EMAIL_RATE_LIMIT", "FORGOT_PASSWORD_EMAIL_RATE_LIMIT", "3 per hour"
    ),
    Setting("VCPAY_DEFAULT_LOCALE", "BABEL_DEFAULT_LOCALE", "en"),
    Setting("VCPAY_DEFAULT_TIMEZONE", "BABEL_DEFAULT_TIMEZONE", "Australia/Sydney", _time_zone),
    Setting("VCPAY_HEARTBEAT_SECONDS", "HEARTBEAT_SECONDS", 30, int),
    Setting("VCPAY_LOG_LEVEL", "LOG_LEVEL", "INFO"),
    # "json" in production: one object a line, with the ids of vcpay/observability/context.py.
    Setting("VCPAY_LOG_FORMAT", "LOG_FORMAT", "text", _log_format),
    # Bearer token of GET /metrics; unset, there is no /metrics (404).
    Setting("VCPAY_METRICS_TOKEN", "METRICS_TOKEN", "", _token, secret=True),
    # /readyz answers 503 once beat's heartbeat, the last Jira poll or the oldest Stripe event
    # waiting for a worker is older than these.
    Setting("VCPAY_READY_HEARTBEAT_SECONDS", "READY_HEARTBEAT_SECONDS", 120, _positive),
    Setting("VCPAY_READY_JIRA_POLL_SECONDS", "READY_JIRA_POLL_SECONDS", 300, _positive),
    Setting("VCPAY_READY_WEBHOOK_SECONDS", "READY_WEBHOOK_SECONDS", 300, _positive),
    # Jira Service Management; the defaults point at the stand-in `make run` starts.
    Setting("VCPAY_JIRA_URL", "JIRA_URL", "http://127.0.0.1:5081"),
    Setting("VCPAY_JIRA_USER", "JIRA_USER", "vcpay@servicedesk.example"),
    Setting(
        "VCPAY_JIRA_API_TOKEN",
        "JIRA_API_TOKEN",
        SANDBOX_JIRA_API_TOKEN,
        secret=True,
        service="JIRA_URL",
    ),
    Setting("VCPAY_JIRA_SERVICE_DESK", "JIRA_SERVICE_DESK", "PAY"),
    Setting("VCPAY_JIRA_REQUEST_TYPE", "JIRA_REQUEST_TYPE", "Enable Payment Gateway"),
    Setting(
        "VCPAY_JIRA_JQL_FILTER",
        "JIRA_JQL_FILTER",
        'project = PAY AND "Request Type" = "Enable Payment Gateway"',
    ),
    Setting("VCPAY_JIRA_TIMEOUT_SECONDS", "JIRA_TIMEOUT_SECONDS", 10.0, float),
    Setting("VCPAY_JIRA_POLL_SECONDS", "JIRA_POLL_SECONDS", 60, int),
    # Signs Jira's admin webhook, which only asks for an early look at one request.
    Setting(
        "VCPAY_JIRA_WEBHOOK_SECRET",
        "JIRA_WEBHOOK_SECRET",
        SANDBOX_JIRA_WEBHOOK_SECRET,
        secret=True,
        service="JIRA_URL",
    ),
    Setting("VCPAY_JIRA_POLL_OVERLAP_MINUTES", "JIRA_POLL_OVERLAP_MINUTES", 2, int),
    Setting("VCPAY_JIRA_SWEEP_SECONDS", "JIRA_SWEEP_SECONDS", 900, int),
    Setting("VCPAY_JIRA_SEARCH_SETTLE_SECONDS", "JIRA_SEARCH_SETTLE_SECONDS", 60, int),
    Setting(
        "VCPAY_JIRA_AWAITING_STATUSES", "JIRA_AWAITING_STATUSES", "Waiting for approval", _names
    ),
    Setting("VCPAY_JIRA_APPROVED_STATUSES", "JIRA_APPROVED_STATUSES", "Approved", _names),
    Setting(
        "VCPAY_JIRA_DECLINED_RESOLUTIONS", "JIRA_DECLINED_RESOLUTIONS", "Declined, Won't Do", _names
    ),
    # Outgoing email.
    Setting("VCPAY_SMTP_HOST", "SMTP_HOST", "127.0.0.1"),
    Setting("VCPAY_SMTP_PORT", "SMTP_PORT", 1025, int),
    Setting("VCPAY_SMTP_USERNAME", "SMTP_USERNAME", ""),
    Setting("VCPAY_SMTP_PASSWORD", "SMTP_PASSWORD", "", secret=True),
    Setting("VCPAY_SMTP_STARTTLS", "SMTP_STARTTLS", False, _bool),
    Setting("VCPAY_SMTP_TIMEOUT_SECONDS", "SMTP_TIMEOUT_SECONDS", 10.0, float),
    Setting("VCPAY_MAIL_FROM", "MAIL_FROM", "vcpay <no-reply@vcpay.example>"),
    Setting("VCPAY_MAIL_CATCHER_URL", "MAIL_CATCHER_URL", "http://127.0.0.1:5082"),
    # Stripe Connect; the defaults point at the stand-in `make run` starts.
    Setting(
        "VCPAY_STRIPE_SECRET_KEY",
        "STRIPE_SECRET_KEY",
        SANDBOX_STRIPE_SECRET_KEY,
        secret=True,
        service="STRIPE_API_BASE",
    ),
    Setting("VCPAY_STRIPE_CLIENT_ID", "STRIPE_CLIENT_ID", "ca_vcpay_sandbox"),
    Setting(
        "VCPAY_STRIPE_WEBHOOK_SECRET",
        "STRIPE_WEBHOOK_SECRET",
        SANDBOX_STRIPE_WEBHOOK_SECRET,
        secret=True,
        service="STRIPE_API_BASE",
    ),
    Setting("VCPAY_STRIPE_API_BASE", "STRIPE_API_BASE", "http://127.0.0.1:5083"),
    # Empty: follow the api base (Stripe's own addresses for Stripe, the stand-in's for it).
    Setting("VCPAY_STRIPE_CONNECT_BASE", "STRIPE_CONNECT_BASE", ""),
    Setting("VCPAY_STRIPE_DASHBOARD_URL", "STRIPE_DASHBOARD_URL", ""),
    Setting("VCPAY_STRIPE_MAX_NETWORK_RETRIES", "STRIPE_MAX_NETWORK_RETRIES", 2, int),
    Setting("VCPAY_STRIPE_TIMEOUT_SECONDS", "STRIPE_TIMEOUT_SECONDS", 10.0, float),
    Setting("VCPAY_STRIPE_OAUTH_STATE_MINUTES", "STRIPE_OAUTH_STATE_MINUTES", 15, int),
    Setting("VCPAY_STRIPE_WEBHOOK_TOLERANCE_SECONDS", "STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300, int),
    Setting("VCPAY_STRIPE_EVENT_MAX_ATTEMPTS", "STRIPE_EVENT_MAX_ATTEMPTS", 8, int),
    Setting("VCPAY_STRIPE_EVENT_SWEEP_SECONDS", "STRIPE_EVENT_SWEEP_SECONDS", 60, int),
    # Calls and payment requests.
    Setting("VCPAY_PAYMENT_REQUEST_MINUTES", "PAYMENT_REQUEST_MINUTES", 30, int),
    Setting("VCPAY_GUEST_LINK_GRACE_MINUTES", "GUEST_LINK_GRACE_MINUTES", 15, int),
    Setting("VCPAY_SAVED_CARD_DAYS", "SAVED_CARD_DAYS", 90, _count),
    Setting("VCPAY_RECONCILE_SECONDS", "RECONCILE_SECONDS", 60, int),
    Setting("VCPAY_RECONCILE_QUIET_SECONDS", "RECONCILE_QUIET_SECONDS", 120, int),
    Setting("VCPAY_RECONCILE_ASK_AGAIN_SECONDS", "RECONCILE_ASK_AGAIN_SECONDS", 300, int),
    Setting("VCPAY_STREAM_POLL_SECONDS", "STREAM_POLL_SECONDS", 0.25, float),
    Setting("VCPAY_STREAM_MAX_SECONDS", "STREAM_MAX_SECONDS", 1800, int),
    Setting("VCPAY_WEB_THREADS", "WEB_THREADS", 256, int),
    # Read by deploy/gunicorn.conf.py, the production web server's settings (PORT, the
    # Procfile runner's, says where each instance listens).
    Setting("VCPAY_WEB_HOST", "WEB_HOST", "0.0.0.0"),  # noqa: S104  # nosec B104  # in a container
    Setting("VCPAY_WEB_WORKERS", "WEB_WORKERS", 2, int),
    Setting("VCPAY_WEB_WORKER_CLASS", "WEB_WORKER_CLASS", "gthread"),
    # gunicorn's --worker-connections under the gevent worker (its default is 1000).
    Setting("VCPAY_WEB_CONNECTIONS", "WEB_CONNECTIONS", 1000, int),
    # One beat at a time through a lock in Redis (celery-redbeat); the production profile sets it.
    Setting("VCPAY_BEAT_LOCK", "BEAT_LOCK", "false", _bool),
    # Open call streams, capped so that one link cannot hold every thread (see calls/stream.py).
    Setting("VCPAY_STREAMS_PER_SESSION", "STREAMS_PER_SESSION", 4, int),
    Setting("VCPAY_STREAMS_PER_ADDRESS", "STREAMS_PER_ADDRESS", 50, int),
    Setting("VCPAY_STREAM_RESERVED_THREADS", "STREAM_RESERVED_THREADS", 32, int),
]


def _secret_key(instance_path: Path) -> str:
    """Keep one generated key per instance so sessions survive a restart of the demo."""
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(48))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def _embedded_defaults(instance_path: Path) -> dict[str, Any]:
    return {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance_path / 'vcpay.sqlite'}",
        # Kombu's file-system transport: a broker with no server, in the instance folder.
        "CELERY_BROKER_URL": "filesystem://",
    }


def load_settings(instance_path: str, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Read every setting from ``environ`` (the process environment by default)."""
    environ = os.environ if environ is None else environ
    instance = Path(instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    defaults = _embedded_defaults(instance)
    values: dict[str, Any] = {}
    unset: list[Setting] = []
    for setting in SETTINGS:
        raw = environ.get(setting.env)
        if raw is None or raw == "":
            default = defaults.get(setting.key, setting.default)
            # Defaults are written as they would be in the environment: read them the same way.
            values[setting.key] = setting.cast(default) if isinstance(default, str) else default
            unset.append(setting)
            continue
        try:
            values[setting.key] = setting.cast(raw)
        except ValueError as error:
            raise ValueError(f"{setting.env}: {error}") from None
    for setting in unset:
        if setting.service and not is_local(values[setting.service]):
            values[setting.key] = ""  # a real service: no published secret stands in for one
    values["SECRET_KEY_FROM_ENVIRONMENT"] = values["SECRET_KEY"] is not None
    if values["SECRET_KEY"] is None:
        values["SECRET_KEY"] = _secret_key(instance)
    if values["SESSION_COOKIE_SECURE"] is None:
        values["SESSION_COOKIE_SECURE"] = values["PUBLIC_URL"].startswith("https://")
    return values


# A Redis that hangs must cost a request a moment, never a thread for good.
REDIS_TIMEOUT_SECONDS = 0.5


def redis_client_options() -> dict[str, Any]:
    """Options for every Redis client that serves a request: short timeouts, and one quick
    retry (a pooled connection that went stale when Redis restarted), not redis-py's ten."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return {
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), 1),
    }


def engine_options(values: dict[str, Any]) -> dict[str, Any]:
    """The database engine's options. A failed statement's parameters are patients' names
    and emails: never in a log. Each connection is pinged before use, so one that a database
    restart closed is replaced rather than failing a request."""
    options: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if values["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        options.update(
            pool_size=values["DATABASE_POOL_SIZE"],
            max_overflow=values["DATABASE_MAX_OVERFLOW"],
            pool_recycle=values["DATABASE_POOL_RECYCLE_SECONDS"] or -1,
        )
    return options


def derived_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Flask and extension settings that follow from the documented ones."""
    from datetime import timedelta

    secure = values["SESSION_COOKIE_SECURE"]
    redis_url = values["REDIS_URL"]
    return {
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "vcpay_session",
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=values["SESSION_HOURS"]),
        "REMEMBER_COOKIE_SECURE": secure,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "WTF_CSRF_TIME_LIMIT": values["SESSION_HOURS"] * 3600,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(values),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_STORAGE_OPTIONS": redis_client_options() if redis_url else {},
        # Redis away: count in this process's memory (with a warning) until it is back; an
        # error in the limiter itself lets the request through rather than fail it.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_HEADERS_ENABLED": True,
        "PREFERRED_URL_SCHEME": "https" if secure else "http",
        "MAX_CONTENT_LENGTH": 1024 * 1024,
    }


class UnsafeConfiguration(ValueError):
    """A setting that must not be used where vcpay is pointed; the message names it."""


def _published(setting: Setting) -> bool:
    return setting.service is not None


def refuse_unsafe_settings(config: dict[str, Any]) -> None:
    """Stop the start-up rather than run with a secret anyone can read, or without one a
    real service needs. Checked for every process: web, worker, beat and commands."""
    production = config["ENVIRONMENT"] == "production"
    for setting in SETTINGS:
        if not _published(setting):
            continue
        value, service = config[setting.key], config[setting.service]
        if value == setting.default and (production or not is_local(service)):
            where = "VCPAY_ENV is production" if production else f"it is used with {service}"
            raise UnsafeConfiguration(
                f"{setting.env} is the value published with vcpay's local stand-in, and "
                f"{where}: anyone could use it. Set a secret of your own."
            )
    for key in ("STRIPE_SECRET_KEY", "JIRA_API_TOKEN"):
        setting = _setting(key)
        if not config[key] and (production or not is_local(config[setting.service])):
            raise UnsafeConfiguration(
                f"{setting.env} is not set; {config[setting.service]} needs it."
            )
    if production and not config.get("SECRET_KEY_FROM_ENVIRONMENT"):
        raise UnsafeConfiguration(
            "VCPAY_SECRET_KEY is not set: in production every web server must sign sessions "
            "with the same key, from the environment."
        )
    away = _setting_pointing_away(config)
    if production or away:
        _refuse_weak_secret_key(config, "VCPAY_ENV is production" if production else away)


def _refuse_weak_secret_key(config: dict[str, Any], where: str) -> None:
    """The key signs sessions, CSRF tokens and receipt links: one that can be guessed forges
    them all, so it must be strong wherever real people or services are involved."""
    key = config["SECRET_KEY"]
    if key.lower() in WELL_KNOWN_SECRET_KEYS or len(key) < 32:
        raise UnsafeConfiguration(
            f"VCPAY_SECRET_KEY is too short or a well-known example, and {where}: use at "
            "least 32 random characters."
        )


# Settings whose address says whether vcpay serves, or uses, something beyond this machine.
SERVICE_ADDRESSES = ("STRIPE_API_BASE", "JIRA_URL", "PUBLIC_URL")


def _setting_pointing_away(config: dict[str, Any]) -> str | None:
    """Why this is no local demo (a setting pointing at another machine), or None."""
    for key in SERVICE_ADDRESSES:
        if not is_local(config[key]):
            return f"{_setting(key).env} is {config[key]}"
    # A database URL holds its password: name the setting only. SQLite, or PostgreSQL over
    # a local socket, has no host.
    if urlsplit(config["SQLALCHEMY_DATABASE_URI"]).hostname not in (None, *LOCAL_HOSTS):
        return "VCPAY_DATABASE_URL names another machine"
    return None


def is_local_demo(config: dict[str, Any]) -> bool:
    """This is `make run`'s demo on this machine: not production, and nothing it serves or
    uses is elsewhere. The demo's people may sign in without two-factor only here."""
    return config["ENVIRONMENT"] != "production" and _setting_pointing_away(config) is None


def webhook_secret(config: dict[str, Any], key: str) -> str | None:
    """A webhook's signing secret, or None while it is unset or is the published one used with
    a real service: anyone could sign with that, so the webhook stays off (404)."""
    setting = _setting(key)
    secret = config[key]
    if not secret or (secret == setting.default and not is_local(config[setting.service])):
        return None
    return secret


def _setting(key: str) -> Setting:
    return next(setting for setting in SETTINGS if setting.key == key)
