"""Storing verified events once, and processing each exactly once."""

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select, update

from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import is_live_key
from vcpay.integrations.stripe_values import WebhookEvent
from vcpay.observability.context import bind
from vcpay.transactions import commit_unit
from vcpay.webhooks.handoff import Handoff
from vcpay.webhooks.models import EventState, StripeEvent
from vcpay.webhooks.registry import IgnoreEvent, handler_for

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 600


def backoff(attempts: int) -> float:
    """Doubling from 5 s up to 10 minutes."""
    return float(min(MAX_BACKOFF_SECONDS, 5 * 2 ** max(attempts - 1, 0)))


def settled_on_arrival(event: WebhookEvent) -> bool:
    """An event no worker would act on (no handler for its type, or the other mode): it is
    kept as ignored at once rather than handed on. Stripe sends several such events with each
    payment (``payment_intent.created``, ``charge.succeeded``...), at the very moment the one
    that matters arrives; handed on, they kept the workers busy while it waited."""
    return handler_for(event.type) is None or event.livemode != _expected_livemode()


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
