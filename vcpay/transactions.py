"""Side effects that must wait for the commit: queueing tasks, sending email.

A worker must never be handed a row the database has not committed, and a change that is
rolled back must not leave an email or a task behind.
"""

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

_KEY = "vcpay_after_commit"
log = logging.getLogger(__name__)


def after_commit(session: Session, callback: Callable[[], object]) -> None:
    """Run ``callback`` once ``session`` commits; forget it if the session rolls back."""
    if not session.in_transaction():
        session.begin()  # so a rollback before any query still discards the callback
    session.info.setdefault(_KEY, []).append(callback)


def register_after_commit_hooks() -> None:
    """Have every session run its callbacks at commit and drop them at rollback. The hooks are
    SQLAlchemy's, for all sessions of the process: installed once, whichever app asks first."""
    for name, hook in (("after_commit", _run_callbacks), ("after_soft_rollback", _drop_callbacks)):
        if not event.contains(Session, name, hook):
            event.listen(Session, name, hook)


def _run_callbacks(session: Session) -> None:
    # The change is committed: a side effect that fails now (the broker away) must not make
    # it look failed. The sweeps find what was left behind (unsent email, unraised requests).
    for callback in session.info.pop(_KEY, []):
        try:
            callback()
        except Exception:
            log.warning("A side effect of a committed change could not be queued", exc_info=True)


def _drop_callbacks(session: Session, previous_transaction) -> None:
    if not session.in_transaction():
        session.info.pop(_KEY, None)
