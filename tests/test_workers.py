"""A real Celery worker process (never eager mode) runs tasks inside the application."""

import pytest
from sqlalchemy import create_engine, text

from tests.processes import celery, product_environment, running, wait_for
from tests.services import redis_url, scratch_postgres_database
from vcpay import create_app
from vcpay.extensions import db
from vcpay.health.tasks import record_heartbeat

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
