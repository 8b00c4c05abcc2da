"""The hooks that feed the logs' ids and the metrics from web requests and Celery tasks."""

import inspect
import time

from celery import signals
from flask import Flask, g, request

from vcpay.database import utcnow
from vcpay.observability import context, metrics
from vcpay.observability.logs import dress

REQUEST_ID_HEADER = "X-Request-ID"
# A task's parameters that name an id, and the log field each one fills.
TASK_PARAMETER_IDS = {"key": "jira_key", "request_key": "payment_request_key", "call_id": "call_id"}
# The ids a web request hands to the tasks it queues, in the message's headers.
IDS_HEADER = "vcpay_ids"


def register_observability(app: Flask) -> None:
    from vcpay.observability.views import blueprint

    app.extensions["started_at"] = utcnow()
    app.register_blueprint(blueprint)
    app.before_request(start_request)
    app.after_request(finish_request)
    app.teardown_request(lambda _error: context.clear())
    connect_task_signals(app)


def start_request() -> None:
    g.observed_since = time.perf_counter()
    context.clear()
    view_args = request.view_args or {}
    context.bind(
        request_id=context.request_id_from(request.headers.get(REQUEST_ID_HEADER)),
        call_id=view_args.get("call_id"),
        payment_request_key=view_args.get("request_key"),
    )


def finish_request(response):
    request_id = context.current().get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("observed_since")
    if started is not None:
        # The url rule, never the path: a path holds ids and tokens, and one series each.
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.observe_request(route, request.method, time.perf_counter() - started)
    return response


def connect_task_signals(app: Flask) -> None:
    """Celery's signals are process-wide: connected once (by uid) whatever the apps made."""
    kind = app.config["LOG_FORMAT"]

    def dress_celery_logger(logger=None, **_kwargs) -> None:
        for handler in logger.handlers if logger else ():
            dress(handler, kind)

    for signal in (signals.after_setup_logger, signals.after_setup_task_logger):
        signal.connect(dress_celery_logger, weak=False, dispatch_uid=f"vcpay-logs-{signal.name}")
    signals.before_task_publish.connect(pass_ids_on, weak=False, dispatch_uid="vcpay-ids-publish")
    signals.task_prerun.connect(bind_task_ids, weak=False, dispatch_uid="vcpay-ids-prerun")
    signals.task_postrun.connect(count_task, weak=False, dispatch_uid="vcpay-ids-postrun")


def pass_ids_on(headers=None, **_kwargs) -> None:
    ids = context.current()
    if headers is not None and ids:
        headers[IDS_HEADER] = ids


def bind_task_ids(task=None, args=(), kwargs=None, **_kwargs) -> None:
    context.clear()
    handed = getattr(task.request, IDS_HEADER, None) or {}
    ids = {name: value for name, value in handed.items() if name in context.FIELDS}
    try:
        bound = inspect.signature(task.run).bind_partial(*(args or ()), **(kwargs or {}))
    except TypeError:
        bound = None
    for parameter, value in bound.arguments.items() if bound else ():
        if parameter in TASK_PARAMETER_IDS:
            ids[TASK_PARAMETER_IDS[parameter]] = value
    context.bind(**ids)


def count_task(task=None, state=None, **_kwargs) -> None:
    metrics.count_task(task.name if task else "unknown", state or "unknown")
    context.clear()
