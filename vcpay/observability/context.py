"""The ids a log line carries: which request, Stripe event, payment request, call or Jira
request it is about. Set where they are known (a web request, the webhook views, a Celery
task) and read by every log record through ``IdsFilter``.

Only ids: never a name, an email, an amount or a token. A payment request's key and a call's
id say which row; only someone who can read the database learns whose it is.
"""

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

FIELDS = ("request_id", "stripe_event_id", "payment_request_key", "call_id", "jira_key")
_ids: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"vcpay_{name}", default=None) for name in FIELDS
}

# An incoming X-Request-ID is kept only if it looks like an id (a proxy's UUID or similar),
# so a header cannot smuggle a line break, a token or an email address into the logs.
WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")
# What each id looks like where it comes from a client (a URL, a payload), checked likewise.
SHAPES = {
    "stripe_event_id": re.compile(r"evt_[A-Za-z0-9_]{1,250}"),
    "payment_request_key": re.compile(r"[A-Za-z0-9_-]{1,40}"),
    "call_id": re.compile(r"[0-9]{1,18}"),
    "jira_key": re.compile(r"[A-Z][A-Z0-9_]{0,19}-[0-9]{1,9}"),
}


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is well-formed, else a new one."""
    if header and WELL_FORMED_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def bind(**ids: object) -> None:
    """Say what the work in this context is about; a value of a shape an id never has is
    left out rather than logged."""
    for name, value in ids.items():
        text = None if value is None else str(value)
        shape = SHAPES.get(name)
        if text is not None and shape is not None and not shape.fullmatch(text):
            text = None
        _ids[name].set(text)


@contextmanager
def about(**ids: object) -> Iterator[None]:
    """``bind`` for a stretch of work only (one Jira request of a poll), then as before."""
    before = {name: _ids[name].get() for name in ids}
    bind(**ids)
    try:
        yield
    finally:
        for name, value in before.items():
            _ids[name].set(value)


def clear() -> None:
    """A new request or task starts knowing nothing (threads and workers are reused)."""
    for var in _ids.values():
        var.set(None)


def current() -> dict[str, str]:
    """The ids known here, for a log record or a task's headers."""
    return {name: value for name, var in _ids.items() if (value := var.get()) is not None}


class IdsFilter(logging.Filter):
    """Puts the known ids on every record (as attributes a JSON formatter picks up)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _ids.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True
