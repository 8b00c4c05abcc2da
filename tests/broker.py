"""Messages on the tests' in-memory broker, run as a worker runs them.

A worker runs a task through Celery's tracer, never eagerly: a retry is then a new message on
the broker, due when the task asked, and a test can read that time and run the message next.
"""

from datetime import UTC, datetime

import pytest
from celery.app.trace import trace_task

from vcpay.extensions import db


@pytest.fixture
def broker(app):
    """The in-memory broker's queue, emptied: what the application queues lands here."""
    celery = app.extensions["celery"]
    celery.set_current()
    with celery.connection_for_write() as connection:
        queue = connection.SimpleQueue("celery")
        queue.clear()
        yield queue
        queue.close()


def next_message(queue, task_name: str):
    """The next message for ``task_name`` on the broker; others (emails) are dropped."""
    while True:
        message = queue.get(timeout=2)
        if message.headers["task"] == task_name:
            return message
        message.ack()


def arguments_queued(queue, task_name: str) -> list[list]:
    """The arguments of every message for ``task_name`` left on the broker, which is emptied."""
    found = []
    while queue.qsize():
        message = queue.get(timeout=1)
        if message.headers["task"] == task_name:
            found.append(message.decode()[0])
        message.ack()
    return found


def run_as_worker(app, message) -> str:
    """Run the message's task as a worker does; the state it ends in (SUCCESS, RETRY...)."""
    celery = app.extensions["celery"]
    task = celery.tasks[message.headers["task"]]
    args, kwargs, _options = message.decode()
    request = {**message.headers, "delivery_info": message.delivery_info}
    outcome = trace_task(task, message.headers["id"], args, kwargs, request, app=celery)
    message.ack()
    db.session.expire_all()  # the test sees what the task committed
    return outcome.info.state if outcome.info else "SUCCESS"


def due_in(message) -> float:
    """Seconds from now until a retried message falls due."""
    eta = datetime.fromisoformat(message.headers["eta"])
    return (eta - datetime.now(UTC)).total_seconds()
