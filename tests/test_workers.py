"""A real Celery worker process (never eager mode) runs tasks inside the application."""

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text

from tests.faultproxy import FaultProxy
from tests.processes import celery, product_environment, running, wait_for
from tests.services import redis_url, scratch_postgres_database
from vcpay import create_app
from vcpay.extensions import db
from vcpay.health.tasks import record_heartbeat
from vcpay.mail.models import OutboundEmail
from vcpay.mail.tasks import send_email
from workers.redis import Transport as RedisTransport

pytestmark = pytest.mark.worker


def heartbeat_from(database_url: str, component: str = "workers"):
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT hostname FROM heartbeats WHERE component = :c"), {"c": component}
            ).scalar()
    finally:
        engine.dispose()


def prepared_app(database_url: str, broker_url: str, instance):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "CELERY_BROKER_URL": broker_url,
        }
    )
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    return app


def settings(database_url: str, broker_url: str, instance) -> dict[str, str]:
    return product_environment(
        VCPAY_INSTANCE_PATH=str(instance),
        VCPAY_DATABASE_URL=database_url,
        VCPAY_CELERY_BROKER_URL=broker_url,
        VCPAY_HEARTBEAT_SECONDS="1",
    )


def test_beat_and_a_worker_run_on_the_embedded_broker(tmp_path, monkeypatch):
    database_url = f"sqlite:///{tmp_path / 'vcpay.sqlite'}"
    monkeypatch.setenv("VCPAY_INSTANCE_PATH", str(tmp_path))
    prepared_app(database_url, "filesystem://", tmp_path)
    env = settings(database_url, "filesystem://", tmp_path)
    worker = celery("worker", "--pool", "solo", "--without-mingle", "--without-gossip")
    beat = celery("beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule"))
    worker_log, beat_log = tmp_path / "worker.log", tmp_path / "beat.log"
    with running(worker, env, worker_log), running(beat, env, beat_log):
        # Nobody sends the task here: beat schedules it, the worker runs it in the app.
        wait_for(lambda: heartbeat_from(database_url), 60, "a heartbeat from beat", worker_log)
    assert "vcpay.health.record_heartbeat" in beat_log.read_text()


def test_the_web_process_sends_a_task_to_an_embedded_worker(tmp_path, monkeypatch):
    database_url = f"sqlite:///{tmp_path / 'vcpay.sqlite'}"
    monkeypatch.setenv("VCPAY_INSTANCE_PATH", str(tmp_path))
    app = prepared_app(database_url, "filesystem://", tmp_path)
    env = settings(database_url, "filesystem://", tmp_path)
    worker = celery("worker", "--pool", "solo", "--without-mingle", "--without-gossip")
    log = tmp_path / "worker.log"
    with running(worker, env, log):
        with app.app_context():
            record_heartbeat.delay("sent-by-web")
        wait_for(lambda: heartbeat_from(database_url, "sent-by-web"), 60, "the task", log)


@pytest.fixture
def server_database(tmp_path):
    """PostgreSQL where configured (the production shape), SQLite otherwise."""
    import os

    if os.environ.get("VCPAY_TEST_DATABASE_URL"):
        with scratch_postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'vcpay.sqlite'}"


def test_a_worker_runs_tasks_through_redis(tmp_path, server_database):
    broker = redis_url()
    app = prepared_app(server_database, broker, tmp_path)
    env = settings(server_database, broker, tmp_path)
    log = tmp_path / "worker.log"
    queue = f"vcpay-test-{tmp_path.name}"  # a queue of its own: Redis is shared
    with running(celery("worker", "--pool", "solo", "--queues", queue), env, log):
        with app.app_context():
            record_heartbeat.apply_async(args=["sent-through-redis"], queue=queue)
        wait_for(lambda: heartbeat_from(server_database, "sent-through-redis"), 60, "the task", log)


PRODUCER = """
import sys
from kombu import Connection, Queue
from workers import broker_transport_options
options = broker_transport_options("filesystem://", sys.argv[1])
queue = Queue("race", routing_key="race")
with Connection("filesystem://", transport=sys.argv[2], transport_options=options) as c:
    producer = c.Producer()
    for number in range(int(sys.argv[3])):
        producer.publish({"n": number, "pad": "x" * 200_000}, routing_key="race",
                         declare=[queue], serializer="json")
"""


@pytest.mark.parametrize("transport", ["workers.filesystem:Transport"])
def test_the_embedded_broker_never_hands_out_a_half_written_message(tmp_path, transport):
    """A consumer reading while another process writes gets every message, whole."""
    import subprocess
    import sys

    from kombu import Connection, Queue

    from workers import broker_transport_options

    options = broker_transport_options("filesystem://", str(tmp_path))
    sent = 200
    received: list[int] = []
    with Connection("filesystem://", transport=transport, transport_options=options) as c:
        channel = c.default_channel
        Queue("race", routing_key="race")(channel).declare()
        producer = subprocess.Popen(
            [sys.executable, "-c", PRODUCER, str(tmp_path), transport, str(sent)]
        )
        while len(received) < sent:
            message = channel.basic_get("race", no_ack=True)
            if message is None:
                assert producer.poll() in (None, 0), "the producer failed"
                continue
            received.append(message.payload["n"])
        producer.wait(timeout=30)
    assert sorted(received) == list(range(sent))  # each exactly once, none torn


@contextmanager
def silent_mail_server() -> Iterator[tuple[int, threading.Event]]:
    """A mail server that takes the connection and never answers: a send that hangs until
    its timeout, so a task is under way (taken from Redis, not yet acknowledged)."""
    listener = socket.create_server(("127.0.0.1", 0))
    connected, held = threading.Event(), []

    def accept() -> None:
        with suppress(OSError):
            while True:
                held.append(listener.accept()[0])
                connected.set()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1], connected
    finally:
        listener.close()
        for connection in held:
            connection.close()


def test_a_worker_outlives_redis_going_away_while_a_task_is_under_way(tmp_path, server_database):
    """Redis cut while a task is unacknowledged: the worker reconnects and goes on working,
    rather than stopping on its way to restore that task."""
    broker = urlsplit(redis_url())
    proxy = FaultProxy(broker.hostname or "127.0.0.1", broker.port or 6379, "redis").start()
    broker_url = f"redis://{proxy.address}{broker.path}"
    app = prepared_app(server_database, broker_url, tmp_path)
    queue = f"vcpay-test-{tmp_path.name}"
    log = tmp_path / "worker.log"
    with silent_mail_server() as (smtp_port, sending):
        env = settings(server_database, broker_url, tmp_path)
        env.update(VCPAY_SMTP_PORT=str(smtp_port), VCPAY_SMTP_TIMEOUT_SECONDS="3")
        worker_command = celery("worker", "--concurrency", "1", "--queues", queue)
        try:
            with running(worker_command, env, log) as worker:
                with app.app_context():
                    email = OutboundEmail(
                        dedupe_key="outage", recipient="pat@example.org", subject="Receipt",
                        body_text="Thank you.",
                    )  # fmt: skip
                    db.session.add(email)
                    db.session.commit()
                    send_email.apply_async((email.id,), queue=queue)
                wait_for(sending.is_set, 60, "the worker to start sending", log)
                proxy.cut()
                time.sleep(1.5)
                proxy.restore()
                with app.app_context():
                    record_heartbeat.apply_async(args=["after-the-outage"], queue=queue)
                wait_for(
                    lambda: heartbeat_from(server_database, "after-the-outage"),
                    60, "a task sent after the outage", log,
                )  # fmt: skip
                assert worker.poll() is None, log.read_text()[-3000:]
        finally:
            proxy.close()


@pytest.mark.parametrize(
    ("broker_url", "certificates"),
    [("redis://127.0.0.1:6379/0", None), ("rediss://redis.example.org:6380/0", ssl.CERT_REQUIRED)],
)
def test_redis_brokers_use_the_transport_that_survives_an_outage(
    tmp_path, monkeypatch, broker_url, certificates
):
    monkeypatch.setenv("VCPAY_INSTANCE_PATH", str(tmp_path))
    app = create_app({"CELERY_BROKER_URL": broker_url})
    with app.app_context():
        connection = app.extensions["celery"].connection_for_write()
    assert connection.get_transport_cls() is RedisTransport
    # A secure broker's certificate is checked, never taken on trust.
    assert (connection.ssl or {}).get("ssl_cert_reqs") == certificates
