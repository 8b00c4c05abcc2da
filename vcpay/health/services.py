"""Is the background machinery alive? Beat schedules a heartbeat that a worker records."""

import socket
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import text

from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.health.models import Heartbeat

WORKERS = "workers"
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
