"""Under gunicorn's gevent worker an open call stream costs a greenlet, not a thread.

The process's stream ceiling then follows its connections (``VCPAY_WEB_CONNECTIONS``, the same
number as ``--worker-connections``) less the reserve, not ``VCPAY_WEB_THREADS``. The last test
starts the real gunicorn with the gevent worker on the test's database (and Redis for wake-ups
where configured), holds more streams than a gthread process of ``make run`` has threads, and
shows pages still answer, an event reaches every stream, and the ceiling answers 503.
"""

import os
import sys
import time
from pathlib import Path

import redis

from sandbox.demo import web_command
from tests.processes import free_port, product_environment, running, wait_for
from tests.test_call_streams import (  # noqa: F401 - call is a fixture
    RawStream,
    _answers,
    answer_times,
    answered_quickly,
    call,
    cookie_header,
    joined_guest,
    read_streams,
)
from vcpay.calls import stream as call_stream
from vcpay.calls.events import STAFF_AUDIENCES, CallEventKind, record_event
from vcpay.calls.models import Call
from vcpay.calls.waker import channel_for
from vcpay.extensions import db

CONNECTIONS, RESERVED = 660, 40  # a ceiling of 620 streams in the one process
STREAMS = 600  # a gthread process of `make run` holds 256 - 32 = 224
BATCH = 100  # streams opened at once, as call screens open over a few moments


def test_the_ceiling_follows_connections_under_gevent_and_threads_otherwise(app, monkeypatch):
    app.config.update(WEB_THREADS=256, WEB_CONNECTIONS=5000, STREAM_RESERVED_THREADS=32)
    streams = call_stream.OpenStreams(app, waker=None)
    assert not call_stream.serving_greenlets()  # pytest's process is not patched
    assert streams.ceiling == 224
    monkeypatch.setattr(call_stream, "serving_greenlets", lambda: True)
    assert streams.ceiling == 4968


def test_serving_greenlets_asks_gevent_only_once_it_has_patched_the_process(monkeypatch):
    monkeypatch.delitem(sys.modules, "gevent.monkey", raising=False)
    assert not call_stream.serving_greenlets()

    class Patched:
        @staticmethod
        def is_module_patched(name: str) -> bool:
            return name == "socket"

    monkeypatch.setitem(sys.modules, "gevent.monkey", Patched)
    assert call_stream.serving_greenlets()


def test_an_announced_event_the_database_does_not_have_does_not_wake_the_stream_again_and_again(
    app,
    call,  # noqa: F811 - the fixture imported above
    monkeypatch,
):
    """Redis pub/sub channels span its databases: another deployment's announcement of its call
    7 (a higher id, not in this database) wakes this process's streams of call 7 once. Under
    gevent a stream woken again and again without a yield would hold the whole worker."""
    monkeypatch.setattr(call_stream, "KEEPALIVE_SECONDS", 0.3)
    app.config["STREAM_MAX_SECONDS"] = 3
    waker = app.extensions["call_waker"]
    reads = []
    read = waker.recent_events
    monkeypatch.setattr(waker, "recent_events", lambda *a, **k: reads.append(a) or read(*a, **k))
    opened = call_stream.OpenStream(call.id, viewer="staff", address="")
    stream = call_stream.stream_events(app, opened, 0, STAFF_AUDIENCES, lambda c: True)
    assert next(stream).startswith("retry:")
    assert "call_started" in next(stream)
    waker.note(call.id, 999_999)  # another deployment's event
    started = time.monotonic()
    assert next(stream) == ": keepalive\n\n"
    assert time.monotonic() - started < 1.5
    assert len(reads) <= 2  # the first read, and the one it woke for


def gevent_command(settings: dict, connections: int) -> list[str]:
    """`make run`'s gunicorn command with the gevent worker in place of gthread's threads."""
    command = web_command(settings)
    threads = command.index("--threads")
    del command[threads : threads + 2]
    command[command.index("--worker-class") + 1] = "gevent"
    command[command.index("--workers") + 1] = "1"
    return [*command, "--worker-connections", str(connections)]


def live_redis() -> str:
    """Redis for the server's wake-ups when the suite has one; else the server polls."""
    url = os.environ.get("VCPAY_TEST_REDIS_URL", "")
    if url:
        try:
            redis.Redis.from_url(url, socket_connect_timeout=2).ping()
        except redis.RedisError:
            return ""
    return url


def open_in_batches(port: int, path: str, cookie: str, count: int) -> list[RawStream]:
    streams: list[RawStream] = []
    while len(streams) < count:
        batch = [RawStream(port, path, cookie) for _ in range(min(BATCH, count - len(streams)))]
        read_streams(batch, lambda b=batch: all(s.answered for s in b), 20)
        streams += batch
    return streams


def test_gevent_holds_more_streams_than_threads_and_pages_still_answer(
    app,
    call,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    live = live_redis()
    env = product_environment(
        VCPAY_INSTANCE_PATH=str(tmp_path / "instance"),
        VCPAY_DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        VCPAY_PUBLIC_URL=url,
        VCPAY_REDIS_URL=live,
        VCPAY_WEB_CONNECTIONS=str(CONNECTIONS),
        VCPAY_STREAM_RESERVED_THREADS=str(RESERVED),
        # One patient's cookie stands for many call screens: no stream replaces another.
        VCPAY_STREAMS_PER_SESSION=str(CONNECTIONS),
        VCPAY_STREAMS_PER_ADDRESS=str(CONNECTIONS),
    )
    log = tmp_path / "gunicorn.log"
    command = gevent_command({**app.config, "PUBLIC_URL": url}, CONNECTIONS)
    opened: list[RawStream] = []
    with running(command, env, log):
        wait_for(lambda: _answers(f"{url}/healthz"), 60, "gunicorn (gevent) to answer", log)
        guest = cookie_header(joined_guest(url, call.guest_token, "Pat Citizen"))
        path = f"/join/{call.guest_token}/events?after=999999"  # after the newest event
        try:
            opened += open_in_batches(port, path, guest, STREAMS)
            assert sum(s.open for s in opened) == STREAMS, log.read_text()[-2000:]
            times = answer_times(url)
            assert answered_quickly(times), times

            # A payment event, committed elsewhere: every stream of the call receives it.
            fresh = record_event(db.session.get(Call, call.id), CallEventKind.PAYMENT_REQUESTED)
            db.session.commit()
            if live:
                redis.Redis.from_url(live).publish(channel_for(live), f"{call.id}:{fresh.id}")
            marker = f"id: {fresh.id}\n".encode()
            read_streams(opened, lambda: all(marker in s.received for s in opened), 15)
            assert sum(marker in s.received for s in opened) == STREAMS

            # Beyond the connections less the reserve: 503 with Retry-After, pages still answer.
            crowd = open_in_batches(port, path, guest, 2 * RESERVED)
            opened += crowd
            refused = [s for s in crowd if s.status == 503]
            assert len(refused) == STREAMS + 2 * RESERVED - (CONNECTIONS - RESERVED)
            assert all(b"\r\nretry-after: 5\r\n" in s.received.lower() for s in refused)
            assert sum(s.open for s in opened) == CONNECTIONS - RESERVED
            times = answer_times(url)
            assert answered_quickly(times), times
        finally:
            for stream in opened:
                stream.socket.close()
