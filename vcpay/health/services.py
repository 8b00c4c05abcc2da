"""Is vcpay able to work? Its dependencies answer, and the background machinery is alive
(beat schedules a heartbeat that a worker records)."""

import socket
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import text

from vcpay.config import REDIS_TIMEOUT_SECONDS, redis_client_options
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.health.models import Heartbeat

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
