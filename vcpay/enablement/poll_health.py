"""How the Jira poll is going: each poll's outcome kept on its cursor, so /readyz and /metrics
on any instance can tell a poll that stopped (beat or workers down) from one that runs and
fails (Jira away, a token revoked)."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from vcpay.database import utcnow
from vcpay.enablement.models import JiraPollCursor
from vcpay.extensions import db
from vcpay.transactions import commit_unit

CURSOR = "enablement_requests"  # the name of the poll's cursor
ERROR_LENGTH = 500


@dataclass(frozen=True)
class PollStatus:
    attempted_at: datetime | None
    succeeded_at: datetime | None
    last_error: str | None
    failures: int
    errors: int

    @property
    def age_seconds(self) -> float | None:
        return _age(self.attempted_at)

    @property
    def success_age_seconds(self) -> float | None:
        return _age(self.succeeded_at)


def _age(moment: datetime | None) -> float | None:
    return None if moment is None else max((utcnow() - moment).total_seconds(), 0.0)


def _cursor() -> JiraPollCursor:
    cursor = db.session.get(JiraPollCursor, CURSOR)
    if cursor is None:
        cursor = JiraPollCursor(name=CURSOR, failures=0, errors=0)
        db.session.add(cursor)
    return cursor


def record_poll_outcome(error: Exception | None) -> None:
    """After a poll (its own work committed or rolled back): note how it ended, in a unit of
    its own."""
    try:
        _note(_cursor(), error)
        commit_unit()
    except IntegrityError:  # a first poll elsewhere made the cursor meanwhile
        db.session.rollback()
        _note(_cursor(), error)
        commit_unit()


def _note(cursor: JiraPollCursor, error: Exception | None) -> None:
    cursor.attempted_at = utcnow()
    if error is None:
        cursor.last_error, cursor.failures = None, 0
        return
    cursor.last_error = f"{type(error).__name__}: {error}"[:ERROR_LENGTH]
    cursor.failures = (cursor.failures or 0) + 1
    cursor.errors = (cursor.errors or 0) + 1


def poll_status() -> PollStatus:
    cursor = db.session.get(JiraPollCursor, CURSOR)
    if cursor is None:
        return PollStatus(None, None, None, 0, 0)
    return PollStatus(
        attempted_at=cursor.attempted_at or cursor.polled_at,
        succeeded_at=cursor.polled_at,
        last_error=cursor.last_error,
        failures=cursor.failures or 0,
        errors=cursor.errors or 0,
    )
