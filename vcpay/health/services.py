"""Is vcpay able to work? Its dependencies answer, and the background machinery is alive
(beat schedules a heartbeat that a worker records, the Jira poll runs, Stripe events do not
wait for a worker for long)."""

import socket
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, text

from vcpay.config import REDIS_TIMEOUT_SECONDS, redis_client_options
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.health.models import Heartbeat

ON_TIME, LATE = "ok", "late"

WORKERS = "workers"
OK, UNREACHABLE, NOT_CONFIGURED = "ok", "unreachable", "not configured"
# Missing this many scheduled beats in a row means the worker or beat is down.
MISSED_BEATS_ALLOWED = 3


def record_heartbeat(component: str = WORKERS) -> Heartbeat:
    heartbeat = db.session.get(Heartbeat, component) or Heartbeat(component=component)
    heartbeat.beat_at = utcnow()
    heartbeat.hostname = socket.gethostname()
    db.session.add(heartbeat)
    return heartbeat


def last_heartbeat(component: str = WORKERS) -> datetime | None:
    heartbeat = db.session.get(Heartbeat, component)
    return heartbeat.beat_at if heartbeat else None


def workers_are_late(now: datetime | None = None) -> bool:
    last = last_heartbeat()
    interval = timedelta(seconds=current_app.config["HEARTBEAT_SECONDS"])
    return last is None or (now or utcnow()) - last > interval * MISSED_BEATS_ALLOWED


def database_is_reachable() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means "not reachable" to a health check
        db.session.rollback()
        return False
    return True


def redis_state() -> str:
    url = current_app.config["REDIS_URL"]
    if not url:
        return NOT_CONFIGURED
    import redis

    client = redis.Redis.from_url(url, **redis_client_options())
    try:
        client.ping()
    except redis.RedisError:
        return UNREACHABLE
    finally:
        client.close()
    return OK


def broker_state() -> str:
    """Whether a message could be handed to the workers now (a connection to the broker)."""
    celery = current_app.extensions["celery"]
    quick = {
        "socket_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
    }
    try:
        with celery.connection_for_write(
            connect_timeout=REDIS_TIMEOUT_SECONDS, transport_options=quick
        ) as connection:
            connection.ensure_connection(max_retries=0)
    except Exception:  # noqa: BLE001 - whatever the transport raises means "not reachable"
        return UNREACHABLE
    return OK


def health_report() -> dict[str, str | None]:
    """What a load balancer and an operator need: each dependency, and an overall status."""
    database_ok = database_is_reachable()
    beat = last_heartbeat() if database_ok else None
    report = {
        "database": OK if database_ok else UNREACHABLE,
        "redis": redis_state(),
        "broker": broker_state(),
        "last_worker_heartbeat": beat.isoformat() if beat else None,
    }
    if not database_ok:
        status = "unavailable"
    elif UNREACHABLE in (report["redis"], report["broker"]):
        status = "degraded"
    else:
        status = OK
    return {"status": status, **report}


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round(max((now - moment).total_seconds(), 0.0), 1)


def _lateness(age: float | None, limit: int, now: datetime) -> str:
    """Something never seen yet (no heartbeat, no poll) is late only once this app has been
    up longer than its limit: a fresh deployment gets the time to start beat."""
    if age is None:
        age = (now - current_app.extensions.get("started_at", now)).total_seconds()
    return LATE if age > limit else ON_TIME


def background_report(now: datetime) -> dict[str, dict]:
    """Beat's heartbeat, the Jira poll and the Stripe inbox, each with its age, its limit
    (settings) and ok or late. Needs the database."""
    from vcpay.enablement.poll_health import poll_status
    from vcpay.webhooks.models import EventState, StripeEvent

    config = current_app.config
    beat_age = _age(last_heartbeat(), now)
    poll = poll_status()
    poll_age = _age(poll.attempted_at, now)
    oldest = db.session.scalar(
        select(func.min(StripeEvent.received_at)).where(
            StripeEvent.state == EventState.RECEIVED.value
        )
    )
    oldest_age = _age(oldest, now)
    limits = (
        config["READY_HEARTBEAT_SECONDS"],
        config["READY_JIRA_POLL_SECONDS"],
        config["READY_WEBHOOK_SECONDS"],
    )
    return {
        "heartbeat": {
            "age_seconds": beat_age,
            "limit_seconds": limits[0],
            "state": _lateness(beat_age, limits[0], now),
        },
        "jira_poll": {
            "age_seconds": poll_age,
            "limit_seconds": limits[1],
            "state": _lateness(poll_age, limits[1], now),
            "failures_in_a_row": poll.failures,
            # The kind of failure only (ServiceDeskUnavailable, ServiceDeskRefused): this page
            # is public, the whole message is in the worker's log.
            "last_error": poll.last_error.split(":", 1)[0] if poll.last_error else None,
        },
        "webhooks": {
            "oldest_pending_seconds": oldest_age,
            "limit_seconds": limits[2],
            # An empty inbox is never late.
            "state": LATE if oldest_age is not None and oldest_age > limits[2] else ON_TIME,
        },
    }


def readiness_report() -> dict:
    """``health_report`` and, with the database, ``background_report``; ``ready`` is whether
    a load balancer should send this instance work."""
    report = health_report()
    background = {}
    if report["database"] == OK:
        try:
            background = background_report(utcnow())
        except Exception:  # noqa: BLE001 - a half-migrated or failing database is not ready
            db.session.rollback()
            report["database"] = UNREACHABLE
    late = [name for name, check in background.items() if check["state"] == LATE]
    ready = report["status"] == OK and report["database"] == OK and not late
    return {**report, "ready": ready, "late": late, **background}
