"""The per-process waker behind live call streams."""

import threading
import time

from sqlalchemy import select

from tests.conftest import csrf_token, sign_in
from tests.processes import wait_for
from tests.services import redis_url
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
        woken[call_id] = waker.wait(call_id, after=0, timeout=timeout)

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
    assert waker.wait(7, after=2, timeout=5) is True
    assert waker.wait(7, after=3, timeout=0.05) is False


def test_an_event_committed_late_below_the_last_id_sent_still_reaches_the_stream(app, monkeypatch):
    """Ids are given out at insert: a slow transaction can commit event 2 after event 3 went
    out. The stream looks back when things go quiet and sends it then, once."""
    monkeypatch.setattr(call_stream, "KEEPALIVE_SECONDS", 0.2)
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
            woken = web_server.wait(42, after=0, timeout=0.2)
        assert woken
        assert web_server.newest[42] == 9
    finally:
        web_server.stop()


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

    def slow_read(engine, call_id, floor, look_back=False):
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
