"""Prometheus metrics. What happens in a process (requests by route, tasks run, open streams)
is counted where it happens; with ``PROMETHEUS_MULTIPROC_DIR`` set, gunicorn's and Celery's
processes on one machine write there and a scrape of any web process adds them all up. What
the database knows (webhook inbox, payments by state, Jira poll, beat) is read at scrape time,
so it is the same whichever instance answers and survives every restart."""

import logging
import os
from collections.abc import Iterator
from datetime import timedelta

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from vcpay.database import utcnow
from vcpay.extensions import db

REQUEST_SECONDS = Histogram(
    "vcpay_request_duration_seconds",
    "Time to answer a web request (to its headers, for a stream), by url rule and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0),
)
TASKS = Counter("vcpay_tasks", "Celery tasks finished, by task name and state.", ["task", "state"])
OPEN_STREAMS = Gauge(
    "vcpay_open_streams", "Call event streams open now.", multiprocess_mode="livesum"
)
log = logging.getLogger(__name__)
# Processing lag is judged over the events processed this recently.
RECENT = timedelta(minutes=5)
RECENT_EVENTS = 2000


def observe_request(route: str, method: str, seconds: float) -> None:
    REQUEST_SECONDS.labels(route, method).observe(seconds)


def count_task(name: str, state: str) -> None:
    TASKS.labels(name, state).inc()


def observe_open_streams(count: int) -> None:
    OPEN_STREAMS.set(count)


def child_exit(_server, worker) -> None:
    """gunicorn's ``child_exit`` hook (in a gunicorn config file): a worker that exited no
    longer counts in the gauges of the machine, its open streams among them."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def _seconds_since(moment) -> float | None:
    return None if moment is None else max((utcnow() - moment).total_seconds(), 0.0)


class DatabaseCollector(Collector):
    """Gauges read from the database at scrape time (inside the scrape's app context)."""

    def collect(self) -> Iterator:
        up = GaugeMetricFamily("vcpay_database_up", "Whether the scrape could read the database.")
        try:
            families = list(self._from_database())
        except Exception as error:  # noqa: BLE001 - a scrape reports the database down
            db.session.rollback()
            log.warning("Metrics: could not read the database (%s)", type(error).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_database(self) -> Iterator:
        yield from _webhook_metrics()
        yield from _payment_metrics()
        yield from _jira_metrics()
        yield from _heartbeat_metrics()


def _webhook_metrics() -> Iterator:
    from vcpay.webhooks.models import EventState, StripeEvent

    by_state = dict(
        db.session.execute(
            select(StripeEvent.state, func.count()).group_by(StripeEvent.state)
        ).all()
    )
    received = CounterMetricFamily(
        "vcpay_webhook_events_received", "Stripe events received and kept (each once)."
    )
    received.add_metric([], sum(by_state.values()))
    yield received
    states = GaugeMetricFamily(
        "vcpay_webhook_events", "Stripe events kept, by state.", labels=["state"]
    )
    for state in EventState:
        states.add_metric([state.value], by_state.get(state.value, 0))
    yield states
    yield _gauge(
        "vcpay_webhook_events_pending",
        "Stripe events waiting for a worker.",
        by_state.get(EventState.RECEIVED.value, 0),
    )
    yield _gauge(
        "vcpay_webhook_events_failed",
        "Stripe events whose every attempt failed (an admin can retry them).",
        by_state.get(EventState.FAILED.value, 0),
    )
    oldest = db.session.scalar(
        select(func.min(StripeEvent.received_at)).where(
            StripeEvent.state == EventState.RECEIVED.value
        )
    )
    yield _gauge(
        "vcpay_webhook_oldest_pending_seconds",
        "Age of the oldest Stripe event waiting for a worker (0 when none waits).",
        _seconds_since(oldest) or 0.0,
    )
    yield _processing_lag()


def _processing_lag() -> GaugeMetricFamily:
    from vcpay.webhooks.models import StripeEvent

    # The newest events by id (the primary key's order, no scan of the table), those of them
    # processed recently.
    recent = db.session.execute(
        select(StripeEvent.received_at, StripeEvent.processed_at)
        .where(StripeEvent.processed_at >= utcnow() - RECENT)
        .order_by(StripeEvent.id.desc())
        .limit(RECENT_EVENTS)
    ).all()
    lags = [(processed - received).total_seconds() for received, processed in recent]
    lag = GaugeMetricFamily(
        "vcpay_webhook_processing_lag_seconds",
        "From receiving a Stripe event to processing it, over the newest 2,000 of those "
        "processed in the last 5 minutes (0 when there were none).",
        labels=["stat"],
    )
    lag.add_metric(["avg"], sum(lags) / len(lags) if lags else 0.0)
    lag.add_metric(["max"], max(lags, default=0.0))
    return lag


def _payment_metrics() -> Iterator:
    from vcpay.payments.models import PaymentRequest

    by_state = db.session.execute(
        select(PaymentRequest.state, func.count()).group_by(PaymentRequest.state)
    )
    payments = GaugeMetricFamily(
        "vcpay_payment_requests", "Payment requests, by state.", labels=["state"]
    )
    for state, count in by_state:
        payments.add_metric([str(state)], count)
    yield payments


def _jira_metrics() -> Iterator:
    from vcpay.enablement.poll_health import poll_status

    status = poll_status()
    if status.age_seconds is not None:
        yield _gauge(
            "vcpay_jira_poll_age_seconds",
            "Since the last Jira poll finished, whether it succeeded or failed.",
            status.age_seconds,
        )
    if status.success_age_seconds is not None:
        yield _gauge(
            "vcpay_jira_poll_success_age_seconds",
            "Since the last Jira poll that succeeded.",
            status.success_age_seconds,
        )
    errors = CounterMetricFamily("vcpay_jira_poll_errors", "Jira polls that failed.")
    errors.add_metric([], status.errors)
    yield errors
    yield _gauge(
        "vcpay_jira_poll_consecutive_failures",
        "Jira polls failed in a row (0 once one succeeds).",
        status.failures,
    )


def _heartbeat_metrics() -> Iterator:
    from vcpay.health.services import last_heartbeat

    age = _seconds_since(last_heartbeat())
    if age is not None:
        yield _gauge(
            "vcpay_beat_heartbeat_age_seconds",
            "Since a worker last recorded the heartbeat beat schedules.",
            age,
        )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation)
    gauge.add_metric([], value)
    return gauge


def exposition() -> bytes:
    """This process's (or, in multiprocess mode, this machine's processes') metrics, then the
    database's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    from_database = CollectorRegistry(auto_describe=False)
    from_database.register(DatabaseCollector())
    return generate_latest(processes) + generate_latest(from_database)
