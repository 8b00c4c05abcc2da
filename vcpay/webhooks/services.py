"""Storing verified events once, and processing each exactly once."""

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import Dialect, Engine, create_engine, or_, select, update

from vcpay.database import UTCDateTime, utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import is_live_key
from vcpay.integrations.stripe_values import WebhookEvent
from vcpay.observability.context import bind
from vcpay.transactions import commit_unit
from vcpay.webhooks.grouping import GroupedWriter
from vcpay.webhooks.handoff import Handoff
from vcpay.webhooks.models import EventState, StripeEvent
from vcpay.webhooks.registry import IgnoreEvent, handler_for

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 600


def backoff(attempts: int) -> float:
    """Doubling from 5 s up to 10 minutes."""
    return float(min(MAX_BACKOFF_SECONDS, 5 * 2 ** max(attempts - 1, 0)))


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


def settled_on_arrival(event: WebhookEvent) -> bool:
    """An event no worker would act on (no handler for its type, or the other mode): it is
    kept as ignored at once rather than handed on. Stripe sends several such events with each
    payment (``payment_intent.created``, ``charge.succeeded``...), at the very moment the one
    that matters arrives; handed on, they kept the workers busy while it waited."""
    return handler_for(event.type) is None or event.livemode != _expected_livemode()


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


def _send_batch(row_ids: list[int]) -> None:
    from vcpay.webhooks.tasks import process_stripe_events

    process_stripe_events.delay(row_ids)


handoff = Handoff(_send_batch)


def enqueue(row_id: int) -> bool:
    """Hand the event to a worker now; if the broker is down the sweeper will do it later."""
    from vcpay.webhooks.tasks import process_stripe_event

    try:
        process_stripe_event.delay(row_id)
    except Exception:  # noqa: BLE001 - any broker failure; the event is safe in the inbox
        log.warning("Could not enqueue Stripe event %s; the sweeper will retry", row_id)
        return False
    return True


class ProcessingFailed(Exception):
    def __init__(self, retry_in: float | None):
        super().__init__(retry_in)
        self.retry_in = retry_in  # None: no attempts left


def _expected_livemode() -> bool:
    # From the key alone: reading all the Stripe settings parses URLs, on every webhook.
    return is_live_key(current_app.config["STRIPE_SECRET_KEY"])


def _expected_mode(event: StripeEvent) -> bool:
    return event.livemode == _expected_livemode()


def process(row_id: int) -> None:
    """Apply one stored event, at most once, whatever else is running."""
    # On PostgreSQL the lock makes a second worker wait here, then skip without asking
    # Stripe; SQLite ignores it, and the guarded update below keeps it once on both.
    event = db.session.get(StripeEvent, row_id, with_for_update=True)
    if event is None or event.state != EventState.RECEIVED:
        db.session.rollback()
        return
    bind(stripe_event_id=event.event_id)  # the worker's log lines name the event
    seen_attempts = event.attempts
    handler = handler_for(event.type)
    outcome, note = EventState.PROCESSED, None
    if handler is None or not _expected_mode(event):
        outcome = EventState.IGNORED
    else:
        try:
            handler(event)
        except IgnoreEvent as ignored:
            db.session.rollback()  # nothing it began is kept
            outcome, note = EventState.IGNORED, ignored.reason[:2000]
        except Exception as error:
            db.session.rollback()
            raise _record_failure(row_id, seen_attempts, error) from error
    # The handler's changes and the mark commit together; if another worker got here first,
    # the guarded update matches nothing and everything is rolled back.
    marked = db.session.execute(
        update(StripeEvent)
        .where(
            StripeEvent.id == row_id,
            StripeEvent.state == EventState.RECEIVED.value,
            StripeEvent.attempts == seen_attempts,
        )
        .values(
            state=outcome.value,
            attempts=seen_attempts + 1,
            processed_at=utcnow(),
            next_attempt_at=None,
            last_error=note,
        )
    )
    if marked.rowcount != 1:
        db.session.rollback()
        return
    commit_unit()


def _record_failure(row_id: int, seen_attempts: int, error: Exception) -> ProcessingFailed:
    attempts = seen_attempts + 1
    exhausted = attempts >= current_app.config["STRIPE_EVENT_MAX_ATTEMPTS"]
    retry_in = None if exhausted else backoff(attempts)
    log.warning("Stripe event %s failed (attempt %s): %s", row_id, attempts, error)
    db.session.execute(
        update(StripeEvent)
        .where(StripeEvent.id == row_id, StripeEvent.state == EventState.RECEIVED.value)
        .values(
            attempts=attempts,
            last_error=f"{type(error).__name__}: {error}"[:2000],
            state=(EventState.FAILED if exhausted else EventState.RECEIVED).value,
            next_attempt_at=None if exhausted else utcnow() + timedelta(seconds=retry_in),
        )
    )
    commit_unit()
    return ProcessingFailed(retry_in)


def overdue_event_ids(limit: int = 500) -> list[int]:
    """Events waiting longer than a sweep interval past their time: their message was lost."""
    grace = timedelta(seconds=current_app.config["STRIPE_EVENT_SWEEP_SECONDS"])
    return list(
        db.session.scalars(
            select(StripeEvent.id)
            .where(
                StripeEvent.state == EventState.RECEIVED.value,
                or_(
                    StripeEvent.next_attempt_at.is_(None),
                    StripeEvent.next_attempt_at <= utcnow() - grace,
                ),
            )
            .order_by(StripeEvent.id)
            .limit(limit)
        )
    )


def requeue(row_ids: list[int]) -> int:
    """Enqueue again; each is due now, so the next sweep leaves it alone for a while."""
    if not row_ids:
        return 0
    db.session.execute(
        update(StripeEvent).where(StripeEvent.id.in_(row_ids)).values(next_attempt_at=utcnow())
    )
    commit_unit()
    return sum(enqueue(row_id) for row_id in row_ids)


def retry_failed(event_ids: list[str] | None = None) -> list[StripeEvent]:
    """An admin's retry: failed events (all, or the given ``evt_`` ids) get fresh attempts."""
    query = select(StripeEvent).where(StripeEvent.state == EventState.FAILED.value)
    if event_ids is not None:
        query = query.where(StripeEvent.event_id.in_(event_ids))
    events = list(db.session.scalars(query.order_by(StripeEvent.id)))
    for event in events:
        event.state = EventState.RECEIVED.value
        event.attempts = 0
        event.next_attempt_at = utcnow()
    commit_unit()
    for event in events:
        enqueue(event.id)
    return events
