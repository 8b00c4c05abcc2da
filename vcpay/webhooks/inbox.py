"""The inbox's write: a verified Stripe event kept once, committed before Stripe is answered.

The busiest path in vcpay: each delivery's row joins whatever other requests of the process
are storing at that moment (``grouping.py``), as one statement on the driver's own cursor.
"""

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import Dialect, Engine, create_engine

from vcpay.database import UTCDateTime, utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_values import WebhookEvent
from vcpay.webhooks.grouping import GroupedWriter
from vcpay.webhooks.models import EventState
from vcpay.webhooks.services import settled_on_arrival

# Plain SQL on the driver's own cursor, with positional parameters: the hottest path in
# vcpay. The dialects' "insert ... on conflict" constructs are compiled afresh on every call,
# and even a text() made once cost about twice the driver's own CPU to execute (binding ten
# named parameters a row, the result's wrapping). One statement per group size, each made
# once: the events of concurrent requests go in together (grouping.py).
EVENT_COLUMNS = (
    "event_id",
    "type",
    "account",
    "livemode",
    "created",
    "payload",
    "received_at",
    "state",
    "next_attempt_at",
    "processed_at",
)
DATETIME_COLUMNS = frozenset(("created", "received_at", "next_attempt_at", "processed_at"))
INSERT_EVENTS = (
    "INSERT INTO stripe_events (event_id, type, account, livemode, created, payload,"
    " received_at, state, next_attempt_at, processed_at, attempts)"
)
ON_CONFLICT = "ON CONFLICT (event_id) DO NOTHING RETURNING id, event_id"
# The drivers' placeholder for a positional parameter: psycopg's, and sqlite3's.
PLACEHOLDERS = {"pyformat": "%s", "format": "%s", "qmark": "?"}
_insert_statements: dict[tuple[int, str], str] = {}


def _insert_events_statement(rows: int, placeholder: str) -> str:
    statement = _insert_statements.get((rows, placeholder))
    if statement is None:
        row = "(" + ", ".join([placeholder] * len(EVENT_COLUMNS)) + ", 0)"
        # Only placeholders are formatted in; the values are bound by the driver.
        statement = f"{INSERT_EVENTS} VALUES {', '.join([row] * rows)} {ON_CONFLICT}"
        _insert_statements[(rows, placeholder)] = statement
    return statement


def store_event(event: WebhookEvent, settled: bool | None = None) -> int | None:
    """Keep the event, committed; its row id, or None if it was kept before. Raises
    ``GroupFailed`` when the write of the group it joined failed: nothing of it was kept.
    ``settled``: what ``settled_on_arrival`` says of it, when the caller has asked already."""
    received_at = utcnow()
    if settled is None:
        settled = settled_on_arrival(event)
    values = {
        "event_id": event.id,
        "type": event.type,
        "account": event.account,
        "livemode": event.livemode,
        "created": datetime.fromtimestamp(event.created, UTC),
        "payload": event.payload,
        "received_at": received_at,
        "state": (EventState.IGNORED if settled else EventState.RECEIVED).value,
        "next_attempt_at": None if settled else received_at,
        "processed_at": received_at if settled else None,
    }
    return _grouped_writer().store(values)


def _grouped_writer() -> GroupedWriter:
    """One per application (and database), shared by the request threads of the process."""
    app = current_app._get_current_object()
    writer = app.extensions.get("stripe_inbox_writer")
    if writer is None:
        with _writer_lock:
            writer = app.extensions.setdefault(
                "stripe_inbox_writer", GroupedWriter(_insert_events, key="event_id")
            )
    return writer


_writer_lock = threading.Lock()


def _insert_events(rows: list[dict]) -> dict[str, int]:
    """Insert the rows in one statement (atomic and committed on its own); the new ids."""
    try:
        return _insert(rows)
    except _StaleConnection:
        return _insert(rows)  # the pooled connection had gone stale (a database restart)


class _StaleConnection(Exception):
    """The database had ended the pooled connection; it is discarded, not pooled again."""


def _insert(rows: list[dict]) -> dict[str, int]:
    engine = _inbox_engine()
    dialect = engine.dialect
    stored_time = _stored_time(dialect)
    values = [
        stored_time(row[name]) if name in DATETIME_COLUMNS else row[name]
        for row in rows
        for name in EVENT_COLUMNS
    ]
    statement = _insert_events_statement(len(rows), PLACEHOLDERS[dialect.paramstyle])
    connection = engine.raw_connection()  # pooled, autocommit like the engine
    cursor = None
    try:
        cursor = connection.cursor()
        cursor.execute(statement, values)
        created = {event_id: row_id for row_id, event_id in cursor.fetchall()}
        cursor.close()
        return created
    except dialect.loaded_dbapi.Error as error:
        if dialect.is_disconnect(error, connection.dbapi_connection, cursor):
            connection.invalidate(error)
            raise _StaleConnection from error
        raise
    finally:
        connection.close()


_stored_times: dict[str, Callable[[datetime | None], object]] = {}


def _stored_time(dialect: Dialect) -> Callable[[datetime | None], object]:
    """A datetime as the model's column type hands it to this driver (UTC; text on SQLite)."""
    convert = _stored_times.get(dialect.name)
    if convert is None:
        convert = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
        _stored_times[dialect.name] = convert
    return convert


def _inbox_engine() -> Engine:
    """The webhook's own small pool: autocommit, since one statement is atomic on its own
    (no BEGIN and COMMIT round trips, and no rollback when a connection goes back to the
    pool), and no ping before each use (another round trip); a stale connection is retried
    once instead."""
    app = current_app._get_current_object()
    engine = app.extensions.get("stripe_inbox_engine")
    if engine is None:
        engine = create_engine(
            db.engine.url,
            isolation_level="AUTOCOMMIT",
            pool_pre_ping=False,
            pool_reset_on_return=None,  # autocommit: no transaction is left to roll back
            hide_parameters=True,  # an event's values stay out of error messages and logs
            pool_size=5,
            max_overflow=10,
        )
        app.extensions["stripe_inbox_engine"] = engine
    return engine
