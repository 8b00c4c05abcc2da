"""The waker: one per process, it learns of new call events and wakes the streams waiting on them.

A stream never holds a database connection while it waits. The waker hears of events from Redis
pub/sub when configured, else by one short query every ``STREAM_POLL_SECONDS``, and wakes only
the streams of the calls concerned, so hundreds of open streams cost one subscription or one
query, not one each.
"""

import logging
import threading
import time
from datetime import timedelta

from flask import Flask
from sqlalchemy import func, or_, select

from vcpay.calls.models import CallEvent
from vcpay.config import redis_client_options
from vcpay.database import utcnow
from vcpay.extensions import db

log = logging.getLogger(__name__)
CHANNEL = "vcpay:call-events"
LOOKBACK = timedelta(seconds=30)
SHARE_SECONDS = 0.5
# Database connections a process's streams read with at once, fewer than its pool holds: under
# gevent thousands of streams wait on greenlets, and their reads would otherwise queue in the
# pool ahead of pages. Only reads take a turn: streams served the shared rows do not queue.
STREAM_READERS = 4


class CallWaker:
    """Knows the newest event id of each call, and wakes the streams waiting on it."""

    def __init__(self, app: Flask):
        self.app = app
        self.redis_url = app.config["REDIS_URL"]
        self.poll_seconds = app.config["STREAM_POLL_SECONDS"]
        self.newest: dict[int, int] = {}
        # One lock, and one condition per call being watched: an event wakes only the
        # streams of its own call, however many other calls are open.
        self.mutex = threading.Lock()
        self.conditions: dict[int, threading.Condition] = {}
        self.waiting: dict[int, int] = {}
        # The last rows read for each call: the streams of a call woken by one event share
        # one query instead of making one each.
        self.shared: dict[int, tuple[int, int, float, list]] = {}
        self.readers: dict[int, threading.Lock] = {}
        self.reading = threading.BoundedSemaphore(STREAM_READERS)
        self.started = False
        self.lock = threading.Lock()
        self.high_water = 0
        self.stopped = threading.Event()

    def stop(self) -> None:
        """End the background thread (tests build many apps; a server runs one for good)."""
        self.stopped.set()

    def announce(self, call_id: int, event_id: int) -> None:
        """Called after a commit in this process; other processes hear it from Redis or poll."""
        self.note(call_id, event_id)
        if self.redis_url:
            try:
                self._redis().publish(CHANNEL, f"{call_id}:{event_id}")
            except Exception:  # noqa: BLE001 - streams fall back to their keepalive re-check
                log.warning("Could not publish a call event to Redis")

    def note(self, call_id: int, event_id: int) -> None:
        with self.mutex:
            if event_id > self.newest.get(call_id, 0):
                self.newest[call_id] = event_id
                if call_id in self.conditions:
                    self.conditions[call_id].notify_all()

    def wake(self, call_id: int) -> None:
        """Wake the streams of a call without an event: one of them has been ended."""
        with self.mutex:
            if call_id in self.conditions:
                self.conditions[call_id].notify_all()

    def wait(
        self, call_id: int, after: int, timeout: float, ended: threading.Event | None = None
    ) -> bool:
        """Block until the call has an event newer than ``after``, or ``ended`` is set (with
        ``wake``); False on timeout."""
        self._start_once()
        deadline = time.monotonic() + timeout
        ended = ended or threading.Event()
        with self.mutex:
            condition = self.conditions.setdefault(call_id, threading.Condition(self.mutex))
            self.waiting[call_id] = self.waiting.get(call_id, 0) + 1
            try:
                while self.newest.get(call_id, 0) <= after and not ended.is_set():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    condition.wait(remaining)
                return True
            finally:
                self.waiting[call_id] -= 1
                if not self.waiting[call_id]:  # nobody watches this call in this process
                    del self.waiting[call_id], self.conditions[call_id]

    def recent_events(self, engine, call_id: int, after: int, look_back: bool = False) -> list:
        if look_back:  # now and then, per stream: not shared
            with self.reading:
                return _recent_rows(engine, call_id, after, look_back=True)
        # The streams of a call wake together: the first reads, the others wait for its rows
        # rather than each missing the shared rows and making the same query at once.
        with self._reader(call_id):
            newest = self.newest.get(call_id, 0)
            with self.mutex:
                shared = self.shared.get(call_id)
            if shared is not None:
                floor, known_newest, read_at, rows = shared
                if (
                    floor <= after
                    and known_newest >= newest
                    and time.monotonic() - read_at < SHARE_SECONDS
                ):
                    return rows
            with self.reading:
                rows = _recent_rows(engine, call_id, after)
            with self.mutex:
                self.shared[call_id] = (after, newest, time.monotonic(), rows)
                if len(self.shared) > 1000:  # calls nobody watches or reads any more
                    for gone in set(self.shared) - set(self.waiting) - {call_id}:
                        if not self.readers.get(gone, threading.Lock()).locked():
                            self.shared.pop(gone)
                            self.readers.pop(gone, None)
            return rows

    def _reader(self, call_id: int) -> threading.Lock:
        with self.mutex:
            return self.readers.setdefault(call_id, threading.Lock())

    def _start_once(self) -> None:
        with self.lock:
            if self.started:
                return
            self.started = True
        target = self._listen if self.redis_url else self._poll
        threading.Thread(target=target, name="call-waker", daemon=True).start()

    def _redis(self):
        import redis

        if not hasattr(self, "_client"):
            self._client = redis.Redis.from_url(self.redis_url, **redis_client_options())
        return self._client

    def _listen(self) -> None:
        while not self.stopped.is_set():
            try:
                pubsub = self._redis().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                while not self.stopped.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is not None:
                        call_id, event_id = message["data"].decode().split(":")
                        self.note(int(call_id), int(event_id))
                pubsub.close()
            except Exception:  # noqa: BLE001 - reconnect; streams re-check on keepalive
                log.warning("Lost the Redis subscription for call events; reconnecting")
                time.sleep(1)

    def _poll(self) -> None:
        with self.app.app_context():
            self.high_water = db.session.scalar(select(func.max(CallEvent.id))) or 0
            db.session.remove()
        while not self.stopped.wait(self.poll_seconds):
            try:
                self._poll_once()
            except Exception:  # a busy database: try again next tick
                log.warning("Could not poll for call events", exc_info=True)

    def _poll_once(self) -> None:
        with self.app.app_context():
            rows = db.session.execute(
                select(CallEvent.call_id, func.max(CallEvent.id))
                .where(CallEvent.id > self.high_water)
                .group_by(CallEvent.call_id)
            ).all()
            db.session.remove()
        for call_id, newest in rows:
            self.high_water = max(self.high_water, newest)
            self.note(call_id, newest)


def _recent_rows(engine, call_id: int, floor: int, look_back: bool = False) -> list:
    """A call's events after ``floor`` and, with ``look_back``, any of the last ``LOOKBACK``
    whatever their id: ids are handed out at insert, so a transaction that commits late can
    add an event below one a stream has already sent. Streams skip what they have sent."""
    newer = CallEvent.id > floor
    if look_back:
        newer = or_(newer, CallEvent.created_at >= utcnow() - LOOKBACK)
    query = (
        select(CallEvent.id, CallEvent.kind, CallEvent.audience, CallEvent.data)
        .where(CallEvent.call_id == call_id, newer)
        .order_by(CallEvent.id)
        .limit(500)
    )
    with engine.connect() as connection:
        return list(connection.execute(query))
