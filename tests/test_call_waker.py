"""The per-process waker behind live call streams."""

import logging
import threading
import time

from redis.connection import parse_url
from sqlalchemy import func, select

from tests.conftest import csrf_token, sign_in
from tests.processes import free_port, wait_for
from tests.services import redis_url
from vcpay.calls import look_back
from vcpay.calls import stream as call_stream
from vcpay.calls import waker as call_waker
from vcpay.calls.events import STAFF_AUDIENCES
from vcpay.calls.models import Call, CallEvent
from vcpay.calls.waker import CallWaker
from vcpay.extensions import db
from vcpay.people.demo import seed_demo
from vcpay.people.models import Clinic


def test_an_event_wakes_only_the_streams_of_its_own_call(app):
    waker = CallWaker(app)
    waker.started = True  # no background listener: this test announces events itself
    woken: dict[int, bool] = {}

    def watch(call_id: int, timeout: float) -> None:
        woken[call_id] = waker.wait(call_id, version=0, timeout=timeout)

    # Call 1's stream would wait a minute: only the event can end its wait within seconds.
    threads = [threading.Thread(target=watch, args=args, daemon=True) for args in ((1, 60), (2, 1))]
    for thread in threads:
        thread.start()
    wait_for(lambda: waker.waiting.get(1), 10, "call 1's stream to wait")
    waker.note(1, 5)
    threads[0].join(timeout=10)
    assert woken.get(1) is True
    threads[1].join()
    assert woken[2] is False  # timed out: call 2 had no event
    assert waker.conditions == {} and waker.waiting == {}  # nothing kept for unwatched calls


def test_a_stream_already_behind_returns_at_once(app):
    waker = CallWaker(app)
    waker.started = True
    waker.note(7, 3)
    assert waker.wait(7, version=0, timeout=5) is True
    learned = waker.version_of(7)
    assert waker.wait(7, version=learned, timeout=0.05) is False
    waker.note(7, 3)  # the same event heard again (from Redis and the look-back) is no news
    assert waker.version_of(7) == learned
    waker.note(7, 2)  # an event below the newest is news all the same: it committed late
    assert waker.version_of(7) > learned


def test_an_event_committed_late_below_the_last_id_sent_still_reaches_the_stream(app, monkeypatch):
    """Ids are given out at insert: a slow transaction can commit event 2 after event 3 went
    out. The process's look-back finds it, and the stream sends it then, once."""
    monkeypatch.setattr(call_stream, "KEEPALIVE_SECONDS", 0.2)
    monkeypatch.setattr(call_waker, "LOOK_BACK_TICK_SECONDS", 0.1)
    app.config["STREAM_POLL_SECONDS"] = 0.05
    clinic = seed_demo().clinics[0]
    call = Call(clinic=clinic)
    db.session.add(call)
    db.session.flush()
    for event_id, kind in ((101, "first"), (103, "third")):
        db.session.add(CallEvent(id=event_id, call=call, kind=kind, data={}))
    db.session.commit()

    opened = call_stream.OpenStream(call.id, viewer="staff", address="")
    stream = call_stream.stream_events(app, opened, 0, STAFF_AUDIENCES, lambda c: True)
    assert next(stream).startswith("retry:")
    delivered = next(stream)
    assert "id: 101\n" in delivered and "id: 103\n" in delivered
    db.session.add(CallEvent(id=102, call_id=call.id, kind="second", data={}))  # the late one
    db.session.commit()
    late = [next(stream) for _ in range(3)]
    assert sum("id: 102\n" in chunk for chunk in late) == 1
    assert not any("id: 101\n" in chunk or "id: 103\n" in chunk for chunk in late)


def test_with_redis_an_event_in_one_process_wakes_streams_in_another(app):
    """Web servers scale out: a payment confirmed by a worker reaches every web process."""
    app.config["REDIS_URL"] = redis_url()
    web_server, worker = CallWaker(app), CallWaker(app)
    try:
        web_server._start_once()  # subscribes
        deadline = time.monotonic() + 30
        woken = False
        while not woken and time.monotonic() < deadline:
            worker.announce(42, 9)  # until the subscription is in place
            woken = web_server.wait(42, version=0, timeout=0.2)
        assert woken
        assert web_server.newest[42] == 9
    finally:
        web_server.stop()


def test_an_event_heard_from_another_process_wakes_the_streams_of_its_call(app):
    """What the Redis listener does with each announcement it receives."""
    waker = CallWaker(app)
    waker.started = True
    woken = []
    watching = threading.Thread(target=lambda: woken.append(waker.wait(3, 0, timeout=60)))
    watching.start()
    wait_for(lambda: waker.waiting.get(3), 10, "call 3's stream to wait")
    waker.hear(b"3:21")
    watching.join(timeout=10)
    assert woken == [True] and waker.newest[3] == 21
    heard = waker.version_of(3)
    waker.hear(b"3:21")  # heard again (published twice, or also found by the look-back)
    assert waker.version_of(3) == heard
    assert waker.version_of(4) == 0  # no other call had news


def refused_redis_url() -> str:
    """A real Redis address where nothing listens: every connection is refused."""
    return f"redis://127.0.0.1:{free_port()}/0"


def test_with_redis_away_an_event_still_wakes_the_streams_of_its_own_process(app, caplog):
    app.config["REDIS_URL"] = refused_redis_url()
    waker = CallWaker(app)
    waker.started = True
    with caplog.at_level(logging.WARNING, logger="vcpay.calls.waker"):
        waker.announce(8, 30)  # the publish is refused; the other processes look back
    assert waker.wait(8, version=0, timeout=0) is True
    assert waker.newest[8] == 30
    assert "Could not publish a call event to Redis" in caplog.text


def test_with_redis_away_the_look_back_still_wakes_streams_and_the_listener_retries(
    app, monkeypatch, caplog
):
    monkeypatch.setattr(call_waker, "LOOK_BACK_TICK_SECONDS", 0.1)
    call = quiet_call()
    app.config["REDIS_URL"] = refused_redis_url()
    waker = CallWaker(app)
    before = set(threading.enumerate())
    with caplog.at_level(logging.WARNING, logger="vcpay.calls.waker"):
        try:
            waker._start_once()
            wait_for(lambda: waker.version_of(call.id), 10, "the first look-back")
            learned = waker.version_of(call.id)
            db.session.add(CallEvent(call_id=call.id, kind="payment_requested", data={}))
            db.session.commit()  # never announced: Redis is away
            assert waker.wait(call.id, version=learned, timeout=10) is True
            assert waker.newest[call.id] == db.session.scalar(select(func.max(CallEvent.id)))
            lost = "Lost the Redis subscription for call events; reconnecting"
            wait_for(lambda: caplog.text.count(lost) >= 2, 10, "the listener to try again")
        finally:
            waker.stop()
    started = set(threading.enumerate()) - before
    assert {thread.name for thread in started} == {"call-waker", "call-look-back"}
    for thread in started:  # a stopped waker's threads end within a tick
        thread.join(timeout=5)
        assert not thread.is_alive(), thread.name


def test_a_change_made_in_a_request_wakes_streams_once_its_answer_is_sent(app, client):
    seed_demo()
    db.session.commit()
    sign_in(client, "clinician@harbourside.example")
    waker = app.extensions["call_waker"]
    clinic = db.session.scalar(select(Clinic).filter_by(name="Harbourside GP Clinic"))
    token = csrf_token(client, "/calls/")
    response = client.post("/calls/start", data={"csrf_token": token, "clinic_id": clinic.id})
    call_id = int(response.location.rsplit("/", 1)[1])
    response.close()  # the server has sent it
    [started] = db.session.scalars(select(CallEvent).filter_by(call_id=call_id)).all()
    assert waker.newest[call_id] == started.id


class CountingLock:
    """A call's reader lock that counts the streams which have come to it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.arrived = 0
        self.counting = threading.Lock()

    def __enter__(self):
        with self.counting:
            self.arrived += 1
        self.lock.acquire()

    def __exit__(self, *exc_info):
        self.lock.release()


def test_the_streams_of_a_call_woken_together_share_one_read(app, monkeypatch):
    """Ten screens on a call wake on one event: one query, and every stream gets its rows."""
    waker = CallWaker(app)
    waker.started = True
    waker.readers[4] = reader = CountingLock()
    reads = []

    def slow_read(engine, call_id, floor, also=()):
        reads.append(call_id)
        # The read is still under way when every other stream comes for the rows.
        wait_for(lambda: reader.arrived >= 10, 30, "the other streams to come for the rows")
        return [f"rows of call {call_id} after {floor}"]

    monkeypatch.setattr(call_waker, "_recent_rows", slow_read)
    # However slowly the threads run, rows read for the same event are still fresh.
    monkeypatch.setattr(call_waker, "SHARE_SECONDS", 60)
    waker.note(4, 9)
    got = []
    threads = [
        threading.Thread(target=lambda: got.append(waker.recent_events(None, 4, after=8)))
        for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reads == [4]
    assert got == [["rows of call 4 after 8"]] * 10

    waker.note(4, 10)  # a newer event: the shared rows are stale, so the next stream reads
    waker.recent_events(None, 4, after=9)
    assert reads == [4, 4]


def test_rows_kept_for_calls_nobody_watches_are_dropped_once_there_are_many(app):
    """A long-running process reads for many calls over a day: it keeps the shared rows of
    the calls still watched, not of every call it ever read for."""
    waker = CallWaker(app)
    waker.started = True
    ended = threading.Event()
    woken = []
    watching = threading.Thread(
        target=lambda: woken.append(waker.wait(3, version=0, timeout=60, ended=ended))
    )
    watching.start()
    wait_for(lambda: waker.waiting.get(3), 10, "call 3's stream to wait")
    for call_id in range(1, 1002):
        assert waker.recent_events(db.engine, call_id, after=0) == []
    assert set(waker.shared) == set(waker.readers) == {3, 1001}  # watched, and the last read
    ended.set()  # call 3's stream is ended (its viewer lost access): it must stop waiting
    waker.wake(3)
    watching.join(timeout=10)
    assert woken == [True] and waker.version_of(3) == 0  # woken by the end, not an event


def quiet_call() -> Call:
    call = Call(clinic=seed_demo().clinics[0])
    db.session.add(call)
    db.session.flush()
    db.session.add(CallEvent(call=call, kind="call_started", data={}))
    db.session.commit()
    return call


def test_a_quiet_stream_reads_nothing_while_it_waits(app, monkeypatch):
    """Ten thousand open streams must not cost ten thousand reads: a stream reads when the
    waker learns of an event of its call, and its keepalives cost no query."""
    monkeypatch.setattr(call_stream, "KEEPALIVE_SECONDS", 0.1)
    call = quiet_call()
    waker = app.extensions["call_waker"]
    reads = []
    read = waker.recent_events
    monkeypatch.setattr(waker, "recent_events", lambda *a, **k: reads.append(a) or read(*a, **k))
    opened = call_stream.OpenStream(call.id, viewer="staff", address="")
    stream = call_stream.stream_events(app, opened, 0, STAFF_AUDIENCES, lambda c: True)
    assert next(stream).startswith("retry:")
    assert "call_started" in next(stream)
    assert [next(stream) for _ in range(3)] == [": keepalive\n\n"] * 3
    # At most one more read: when the process's first look-back learned of call_started.
    assert len(reads) <= 2
    reads.clear()
    assert [next(stream) for _ in range(5)] == [": keepalive\n\n"] * 5
    assert reads == []

    db.session.add(CallEvent(call_id=call.id, kind="payment_requested", data={}))
    db.session.commit()
    event = db.session.scalar(select(func.max(CallEvent.id)))
    waker.note(call.id, event)
    assert "payment_requested" in next(stream)
    assert len(reads) == 1


def test_the_look_back_learns_of_an_event_whose_announcement_was_lost(app):
    call = quiet_call()
    waker = CallWaker(app)
    waker.started = True
    waker.look_back_once()  # the first learns of what is there
    learned = waker.version_of(call.id)
    assert learned > 0
    waker.look_back_once()
    assert waker.version_of(call.id) == learned  # nothing new, no news
    db.session.add(CallEvent(call_id=call.id, kind="payment_requested", data={}))
    db.session.commit()  # committed, but never announced (a Redis connection dropped)
    waker.look_back_once()
    assert waker.version_of(call.id) > learned
    assert waker.newest[call.id] == db.session.scalar(select(func.max(CallEvent.id)))


def test_the_look_back_reads_only_what_became_visible_lately(app, monkeypatch):
    call = quiet_call()
    waker = CallWaker(app)
    waker.started = True
    waker.look_back_once()
    newest = waker.newest[call.id]
    monkeypatch.setattr(look_back, "LOOK_BACK_SECONDS", 0)
    waker.look_back_once()
    assert waker.look_back.floor() == newest  # later reads start above what it has seen


def test_events_learned_long_ago_are_forgotten(app, monkeypatch):
    waker = CallWaker(app)
    waker.started = True
    waker.note(5, 11)
    monkeypatch.setattr(call_waker, "LEARNED_SECONDS", -1)
    waker._forget_old()
    assert 5 not in waker.learned and 5 not in waker.version
    waker.note(5, 12)  # a call seen again never goes back to an older version number
    assert waker.version_of(5) > 1


def test_each_deployment_on_one_redis_server_has_its_own_channel(app):
    """Pub/sub channels span Redis's numbered databases: a deployment on database 3 must not
    wake the streams of one on database 4 for a call that only shares its number."""
    assert call_waker.channel_for("redis://127.0.0.1:6379/3") == "vcpay:call-events:3"
    assert call_waker.channel_for("redis://127.0.0.1:6379/4") != call_waker.channel_for(
        "redis://127.0.0.1:6379/3"
    )
    url = redis_url()
    parts = parse_url(url)
    neighbour_url = f"redis://{parts['host']}:{parts['port']}/{parts.get('db', 0) ^ 1}"
    app.config["REDIS_URL"] = url
    listening, ours = CallWaker(app), CallWaker(app)
    app.config["REDIS_URL"] = neighbour_url
    neighbour = CallWaker(app)
    try:
        listening._start_once()
        deadline = time.monotonic() + 30
        woken = False
        while not woken and time.monotonic() < deadline:
            ours.announce(77, 9)  # until the subscription is in place
            woken = listening.wait(77, version=0, timeout=0.2)
        assert woken
        heard = listening.version_of(77)
        neighbour.announce(77, 10)
        assert listening.wait(77, version=heard, timeout=1) is False
        assert listening.newest[77] == 9
    finally:
        listening.stop()


def test_a_persons_streams_of_a_call_share_one_permission_check(app):
    call = quiet_call()
    checks = app.extensions["call_access_checks"]
    asked = []

    def still_allowed(_call) -> bool:
        asked.append(1)
        return True

    for _ in range(5):
        assert checks.allowed(app, f"sign-in:1:{call.id}", call.id, still_allowed, 60)
    assert len(asked) == 1
    assert checks.allowed(app, f"sign-in:2:{call.id}", call.id, still_allowed, 60)
    assert len(asked) == 2  # another sign-in is checked on its own
    # Once the answer is old, the right is asked again: here it has been lost.
    assert checks.allowed(app, f"sign-in:3:{call.id}", call.id, still_allowed, 0)
    assert checks.allowed(app, f"sign-in:3:{call.id}", call.id, lambda c: False, 0) is False


def test_an_event_announced_before_its_rows_can_be_read_still_reaches_the_stream(app, monkeypatch):
    """An announcement can come before its event is there to read (a savepoint's release, a
    publish racing the commit): the stream's read finds nothing, and the look-back, finding the
    event later, wakes the stream again."""
    monkeypatch.setattr(call_stream, "KEEPALIVE_SECONDS", 0.2)
    monkeypatch.setattr(call_waker, "LOOK_BACK_TICK_SECONDS", 0.1)
    call = quiet_call()
    waker = app.extensions["call_waker"]
    opened = call_stream.OpenStream(call.id, viewer="staff", address="")
    stream = call_stream.stream_events(app, opened, 0, STAFF_AUDIENCES, lambda c: True)
    assert next(stream).startswith("retry:")
    assert "call_started" in next(stream)
    coming = db.session.scalar(select(func.max(CallEvent.id))) + 1
    waker.note(call.id, coming)  # heard of, not committed yet
    assert next(stream) == ": keepalive\n\n"  # woken, read nothing, waited again
    db.session.add(CallEvent(id=coming, call_id=call.id, kind="payment_refunded", data={}))
    db.session.commit()
    later = [next(stream) for _ in range(5)]
    assert sum(f"id: {coming}\n" in chunk for chunk in later) == 1
