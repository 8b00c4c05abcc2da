"""Celery bound to the Flask factory: every task runs inside an application context."""

from datetime import timedelta
from typing import Any

from celery import Celery, Task
from flask import Flask

# Modules whose tasks the worker registers; each feature adds its own.
TASK_MODULES = ["vcpay.health.tasks"]

# Embedded brokers (no server) poll a database; they cannot broadcast to workers.
SERVERLESS_SCHEMES = ("sqla+", "filesystem")


def is_embedded_broker(url: str) -> bool:
    return url.startswith(SERVERLESS_SCHEMES)


def celery_settings(config: dict[str, Any]) -> dict[str, Any]:
    broker_url = config["CELERY_BROKER_URL"]
    embedded = is_embedded_broker(broker_url)
    return {
        "broker_url": broker_url,
        "broker_connection_retry_on_startup": True,
        # A short poll keeps the embedded broker responsive for a demo.
        "broker_transport_options": {"polling_interval": 0.1} if embedded else {},
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
            "record-heartbeat": {
                "task": "vcpay.health.record_heartbeat",
                "schedule": timedelta(seconds=config["HEARTBEAT_SECONDS"]),
                "options": {"expires": config["HEARTBEAT_SECONDS"]},
            },
        },
    }


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(celery_settings(app.config))
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
