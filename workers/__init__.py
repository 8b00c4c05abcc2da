"""Celery bound to the Flask factory: every task runs inside an application context."""

import hashlib
import ssl
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import Celery, Task
from flask import Flask

# Modules whose tasks the worker registers; each feature adds its own.
TASK_MODULES = [
    "vcpay.health.tasks",
    "vcpay.mail.tasks",
    "vcpay.enablement.tasks",
    "vcpay.webhooks.tasks",
    "vcpay.payments.tasks",
    "vcpay.payouts.tasks",
]
# Payouts' webhooks bring their news at once; this catches what a missed one would have told.
PAYOUT_REFRESH_SECONDS = 3600
SAVED_CARD_SWEEP_SECONDS = 3600  # cards are kept for days: an hour late is on time

# Embedded brokers (no server) are polled; they cannot broadcast to workers.
SERVERLESS_SCHEMES = ("sqla+", "filesystem")
# A short poll keeps the embedded broker responsive: a payment reaches a clinician quickly.
EMBEDDED_POLLING_SECONDS = 0.05


def is_embedded_broker(url: str) -> bool:
    return url.startswith(SERVERLESS_SCHEMES)


# Without a socket timeout, a publish to a Redis that hangs waits forever (kombu's default);
# longer than the one-second BRPOP a worker waits on, so consuming is not cut short.
REDIS_BROKER_TIMEOUTS = {"socket_timeout": 5.0, "socket_connect_timeout": 2.0}


# Named explicitly, a transport no longer comes from the URL's scheme, nor do kombu's TLS
# defaults for rediss:// (which skip certificate checks): certificates are checked here.
REDIS_TLS = {"ssl_cert_reqs": ssl.CERT_REQUIRED}


def broker_transport(broker_url: str) -> str | None:
    """Our variants of kombu's transports: atomic files (workers/filesystem.py) and a Redis
    channel that survives an outage under a task (workers/redis.py)."""
    if broker_url.startswith("filesystem"):
        return "workers.filesystem:Transport"
    if broker_url.startswith(("redis:", "rediss:")):
        return "workers.redis:Transport"
    return None


def broker_transport_options(broker_url: str, instance_path: str) -> dict[str, Any]:
    if broker_url.startswith("redis"):
        return dict(REDIS_BROKER_TIMEOUTS)
    if not broker_url.startswith("filesystem"):
        return {}
    folder = Path(instance_path) / "broker"
    queues, control = folder / "queues", folder / "control"
    for path in (queues, control):
        path.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(queues),
        "data_folder_out": str(queues),
        "control_folder": str(control),
        "polling_interval": EMBEDDED_POLLING_SECONDS,
    }


def _every(task: str, seconds: float) -> dict[str, Any]:
    # A run that could not start within its own interval is dropped: the next one does its work.
    return {"task": task, "schedule": timedelta(seconds=seconds), "options": {"expires": seconds}}


# With Redis, beat keeps its schedule there and holds a lock while it runs (celery-redbeat,
# made to wait out a Redis outage in workers/beat.py): a second beat, started by mistake or as
# a stand-by, waits for the lock instead of sending every task twice. It looks for the lock
# every BEAT_LOOP_SECONDS, and a lock not renewed expires after BEAT_LOCK_SECONDS: a stand-by
# takes over within that of a beat that died without letting go.
BEAT_LOOP_SECONDS = 5
BEAT_LOCK_SECONDS = BEAT_LOOP_SECONDS * 5


def beat_lock_prefix(database_url: str) -> str:
    """Beats that share a database are one deployment and share one lock; deployments (or
    test runs) that share only a Redis never wait for each other. The address is hashed with
    its password hidden: no secret ends up in a Redis key."""
    from sqlalchemy.engine import make_url

    shown = make_url(database_url).render_as_string(hide_password=True)
    return f"vcpay:beat:{hashlib.sha256(shown.encode()).hexdigest()[:16]}:"


def beat_settings(config: dict[str, Any]) -> dict[str, Any]:
    """One beat at a time where the deployment asks for it (VCPAY_BEAT_LOCK) and has a Redis;
    otherwise (`make run`'s demo, the fault tests' single beat) Celery's own scheduler and its
    file."""
    redis_url = config["REDIS_URL"]
    if not redis_url or not config.get("BEAT_LOCK"):
        return {}
    return {
        "beat_scheduler": "workers.beat:LockedScheduler",
        "redbeat_redis_url": redis_url,
        "redbeat_redis_options": dict(REDIS_BROKER_TIMEOUTS),  # a hung Redis costs a tick
        "redbeat_key_prefix": beat_lock_prefix(config["SQLALCHEMY_DATABASE_URI"]),
        "redbeat_lock_timeout": BEAT_LOCK_SECONDS,
        "beat_max_loop_interval": BEAT_LOOP_SECONDS,
    }


def celery_settings(config: dict[str, Any], instance_path: str) -> dict[str, Any]:
    broker_url = config["CELERY_BROKER_URL"]
    embedded = is_embedded_broker(broker_url)
    return {
        **beat_settings(config),
        "broker_url": broker_url,
        "broker_transport": broker_transport(broker_url),
        "broker_use_ssl": REDIS_TLS if broker_url.startswith("rediss:") else None,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": broker_transport_options(broker_url, instance_path),
        "worker_enable_remote_control": not embedded,
        "task_ignore_result": True,
        # A task is acknowledged only once done, so a crashed worker's task runs again;
        # every task is written to be safe to repeat.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "timezone": "UTC",
        "include": TASK_MODULES,
        "beat_schedule": {
            "record-heartbeat": _every(
                "vcpay.health.record_heartbeat", config["HEARTBEAT_SECONDS"]
            ),
            "poll-service-desk": _every(
                "vcpay.enablement.poll_service_desk", config["JIRA_POLL_SECONDS"]
            ),
            "sweep-service-desk": _every(
                "vcpay.enablement.sweep_service_desk", config["JIRA_SWEEP_SECONDS"]
            ),
            "resend-pending-email": _every("vcpay.mail.resend_pending", 600),
            "reconcile-payment-requests": _every(
                "vcpay.payments.reconcile_payment_requests", config["RECONCILE_SECONDS"]
            ),
            "sweep-stripe-events": _every(
                "vcpay.webhooks.sweep_stripe_events", config["STRIPE_EVENT_SWEEP_SECONDS"]
            ),
            "refresh-payouts": _every("vcpay.payouts.refresh_all_payouts", PAYOUT_REFRESH_SECONDS),
            "detach-old-saved-cards": _every(
                "vcpay.payments.detach_old_saved_cards", SAVED_CARD_SWEEP_SECONDS
            ),
        },
    }


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(celery_settings(app.config, app.instance_path))
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
