"""Claiming work that must be done once, however many workers try at the same moment.

SQLite ignores ``SELECT ... FOR UPDATE``, so a row lock cannot make a second worker wait
there. A worker claims the row instead with ``UPDATE ... SET <claim> = now WHERE <claim> IS
NULL`` and acts only if its update changed the row: of two at once, exactly one wins, on
SQLite as on PostgreSQL. A claim left by a worker that died is taken over once it is
``CLAIM_TIMEOUT`` old, so the work is retried later, never lost.
"""

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import InstrumentedAttribute

from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.transactions import commit_claim

# Far longer than any one attempt takes (every outside call has a timeout of seconds).
CLAIM_TIMEOUT = timedelta(minutes=10)


def stale_before() -> datetime:
    return utcnow() - CLAIM_TIMEOUT


def claim(column: InstrumentedAttribute, *where) -> bool:
    """Set ``column`` to now on the row ``where`` picks, if it is free or stale, and commit
    that by itself (so other workers see the claim, and SQLite's write lock is not held
    meanwhile). True if this worker won the row."""
    claimed = db.session.execute(
        update(column.class_)
        .where(*where, or_(column.is_(None), column < stale_before()))
        .values({column: utcnow()})
        .execution_options(synchronize_session=False)
    )
    commit_claim()
    return claimed.rowcount == 1
