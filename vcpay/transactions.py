"""Side effects that must wait for the commit: queueing tasks, sending email.

A worker must never be handed a row the database has not committed, and a change that is
rolled back must not leave an email or a task behind.
"""

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

_KEY = "vcpay_after_commit"


def after_commit(session: Session, callback: Callable[[], object]) -> None:
    """Run ``callback`` once ``session`` commits; forget it if the session rolls back."""
    if not session.in_transaction():
        session.begin()  # so a rollback before any query still discards the callback
    session.info.setdefault(_KEY, []).append(callback)


@event.listens_for(Session, "after_commit")
def _run_callbacks(session: Session) -> None:
    for callback in session.info.pop(_KEY, []):
        callback()


@event.listens_for(Session, "after_soft_rollback")
def _drop_callbacks(session: Session, previous_transaction) -> None:
    if not session.in_transaction():
        session.info.pop(_KEY, None)
