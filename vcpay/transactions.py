"""Where transactions end, and the side effects that must wait for them.

The rule: services change rows and flush; the view, task or command that called them
commits once, when its unit of work is whole. Side effects (queueing a task, sending email,
waking call screens) wait for that commit through ``after_commit``: a worker must never be
handed a row the database has not committed, and a change that is rolled back must not leave
an email or a task behind.

Two kinds of commit happen inside services, each through its own named function so that
``tests/test_transactions.py`` can tell them from a stray ``commit()``:

- ``commit_claim``: a claim (``UPDATE ... WHERE claimed IS NULL``) is committed on its own
  before the outside call it guards, so a rival worker sees it and stands back.
- ``commit_unit``: a worker's batch (Stripe events, Jira decisions, the reconciler's
  requests) commits each item as its own unit, so one failure never undoes another and no
  transaction stays open across a call to Stripe or Jira.
"""

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

from vcpay.extensions import db

_KEY = "vcpay_after_commit"
log = logging.getLogger(__name__)


def commit_claim() -> None:
    """Commit a claim by itself, before the outside call it guards, so rivals see it."""
    db.session.commit()


def commit_unit() -> None:
    """Commit one unit of a worker's batch (or a page's own bookkeeping before the page's
    work), apart from the rest."""
    db.session.commit()


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
    # SQLAlchemy calls this hook for a savepoint's release too (``begin_nested``): nothing is
    # committed then, and what the callbacks announce would not be visible to anyone yet.
    if session.in_nested_transaction():
        return
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
