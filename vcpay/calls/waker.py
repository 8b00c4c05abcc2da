"""The waker: one per process, it learns of new call events and wakes the streams waiting on them.

A stream never holds a database connection while it waits, and never reads while nothing
happens. The waker learns of events from Redis pub/sub when configured, else by one short query
every ``STREAM_POLL_SECONDS``; and every ``LOOK_BACK_TICK_SECONDS`` one more query, for the whole
process, finds any event it has not learned of (one that committed late, below ids already sent,
or whose announcement was lost with a Redis connection). It wakes only the streams of the calls
concerned, so ten thousand open streams cost the process a subscription and a query every few
seconds, not a query each.
"""

import itertools
import logging
import threading
import time
from collections.abc import Iterable

from flask import Flask
from redis.connection import parse_url
from sqlalchemy import func, or_, select

from vcpay.calls.look_back import LookBack
from vcpay.calls.models import CallEvent
from vcpay.config import redis_client_options
from vcpay.extensions import db

log = logging.getLogger(__name__)
SHARE_SECONDS = 0.5
# Database connections a process's streams read with at once, fewer than its pool holds: under
# gevent thousands of streams wait on greenlets, and their reads would otherwise queue in the
# pool ahead of pages. Only reads take a turn: streams served the shared rows do not queue.
STREAM_READERS = 4
LOOK_BACK_TICK_SECONDS = 5.0
# How long the waker remembers each event it learned of: longer than the look-back reaches, so
# an event it finds again is not news. Streams remember what they sent for twice as long.
LEARNED_SECONDS = 120.0
READ_LIMIT = 500  # events one stream read returns at most: a stream that got as many reads on


def channel_for(redis_url: str) -> str:
    """One deployment's channel, named after its Redis database: channels span databases."""
    return f"vcpay:call-events:{parse_url(redis_url).get('db', 0)}"


class CallWaker:
    """Knows the events of each call learned lately, and wakes the streams waiting on them."""

    def __init__(self, app: Flask):
        self.app = app
        self.redis_url = app.config["REDIS_URL"]
        self.channel = channel_for(self.redis_url) if self.redis_url else ""
        self.poll_seconds = app.config["STREAM_POLL_SECONDS"]
        self.newest: dict[int, int] = {}
        # Each call's version moves on whenever the waker learns of one of its events. Versions
        # come from one counter, so a call forgotten and seen again never goes back to a number
        # a stream is waiting past.
        self.versions = itertools.count(1)
        self.version: dict[int, int] = {}
        self.learned: dict[int, dict[int, float]] = {}  # call -> event id -> when learned
        self.heard: dict[int, set[int]] = {}  # call -> ids announced, not yet found by a read
        self.look_back = LookBack()
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
        """End the background threads (tests build many apps; a server runs one for good)."""
        self.stopped.set()

    def announce(self, call_id: int, event_id: int) -> None:
        """Called after a commit in this process; other processes hear it from Redis or poll."""
        self.note(call_id, event_id)
        if self.redis_url:
            try:
                self._redis().publish(self.channel, f"{call_id}:{event_id}")
            except Exception:  # noqa: BLE001 - the other processes' look-back finds it
                log.warning("Could not publish a call event to Redis")

    def note(self, call_id: int, event_id: int) -> None:
        self.learn({call_id: [event_id]})

    def learn(self, events: dict[int, Iterable[int]], seen: bool = False) -> None:
        """Learn of events (call -> ids), and wake the streams of the calls that had news.

        ``seen``: read from the database, not only heard of. An event heard of (announced)
        that no stream's read has found yet is news again when the look-back sees it: its
        announcement may have come before its rows were there to read."""
        now = time.monotonic()
        with self.mutex:
            for call_id, event_ids in events.items():
                known = self.learned.setdefault(call_id, {})
                news = [event_id for event_id in event_ids if event_id not in known]
                unread = self.heard.get(call_id, set())
                found = unread.intersection(event_ids) if seen else set()
                if not news and not found:
                    continue
                known.update(dict.fromkeys(news, now))
                if seen:
                    unread -= found
                elif news:
                    self.heard.setdefault(call_id, set()).update(news)
                self.newest[call_id] = max(self.newest.get(call_id, 0), *news, *found)
                self.version[call_id] = next(self.versions)
                if call_id in self.conditions:
                    self.conditions[call_id].notify_all()

    def found(self, call_id: int, event_ids: Iterable[int]) -> None:
        """A stream's read found these events: heard of and read, they are news no more."""
        with self.mutex:
            unread = self.heard.get(call_id)
            if unread:
                unread.difference_update(event_ids)

    def version_of(self, call_id: int) -> int:
        return self.version.get(call_id, 0)

    def unsent(self, call_id: int, after: int, resumed_after: int, sent: dict[int, float]):
        """Events of the call learned lately at or below ``after`` (so a read of newer ones
        would miss them) that a stream resumed after ``resumed_after`` has not sent: late
        commits. Almost always none."""
        with self.mutex:
            known = list(self.learned.get(call_id, ()))
        return [e for e in known if resumed_after < e <= after and e not in sent]

    def wake(self, call_id: int) -> None:
        """Wake the streams of a call without an event: one of them has been ended."""
        with self.mutex:
            if call_id in self.conditions:
                self.conditions[call_id].notify_all()

    def wait(
        self, call_id: int, version: int, timeout: float, ended: threading.Event | None = None
    ) -> bool:
        """Block until the waker learns of an event of the call (its version passes
        ``version``), or ``ended`` is set (with ``wake``); False on timeout."""
        self._start_once()
        deadline = time.monotonic() + timeout
        ended = ended or threading.Event()
        with self.mutex:
            condition = self.conditions.setdefault(call_id, threading.Condition(self.mutex))
            self.waiting[call_id] = self.waiting.get(call_id, 0) + 1
            try:
                while self.version.get(call_id, 0) <= version and not ended.is_set():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    condition.wait(remaining)
                return True
            finally:
                self.waiting[call_id] -= 1
                if not self.waiting[call_id]:  # nobody watches this call in this process
                    del self.waiting[call_id], self.conditions[call_id]

    def recent_events(self, engine, call_id: int, after: int, also: Iterable[int] = ()) -> list:
        """The call's events after ``after``, and those named in ``also`` (late commits)."""
        also = list(also)
        if also:  # rare, and this stream's own: not shared
            with self.reading:
                return _recent_rows(engine, call_id, after, also)
        # The streams of a call wake together: the first reads, the others wait for its rows
        # rather than each missing the shared rows and making the same query at once.
        with self._reader(call_id):
            version = self.version_of(call_id)
            with self.mutex:
                shared = self.shared.get(call_id)
            if shared is not None:
                floor, known_version, read_at, rows = shared
                if (
                    floor <= after
                    and known_version >= version
                    and time.monotonic() - read_at < SHARE_SECONDS
                ):
                    return rows
            with self.reading:
                rows = _recent_rows(engine, call_id, after)
            with self.mutex:
                self.shared[call_id] = (after, version, time.monotonic(), rows)
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
        hear = self._listen if self.redis_url else self._poll
        threading.Thread(target=hear, name="call-waker", daemon=True).start()
        threading.Thread(target=self._look_back, name="call-look-back", daemon=True).start()

    def _redis(self):
        import redis

        if not hasattr(self, "_client"):
            self._client = redis.Redis.from_url(self.redis_url, **redis_client_options())
        return self._client

    def _listen(self) -> None:
        while not self.stopped.is_set():
            try:
                pubsub = self._redis().pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                while not self.stopped.is_set():
                    if (message := pubsub.get_message(timeout=1.0)) is not None:
                        self.hear(message["data"])
                pubsub.close()
            except Exception:  # noqa: BLE001 - reconnect; the look-back finds what was missed
                log.warning("Lost the Redis subscription for call events; reconnecting")
                self.stopped.wait(1)

    def hear(self, announcement: bytes) -> None:
        """An event another process announced: ``call:event``, as ``announce`` publishes it."""
        self.note(*(int(part) for part in announcement.decode().split(":")))

    def _poll(self) -> None:
        while not self.stopped.is_set():
            try:
                self._poll_once()
            except Exception:  # a busy database: try again next tick
                log.warning("Could not poll for call events", exc_info=True)
            self.stopped.wait(self.poll_seconds)

    def _poll_once(self) -> None:
        with self.app.app_context():
            if not self.high_water:  # the first poll: what is there already is no news
                self.high_water = db.session.scalar(select(func.max(CallEvent.id))) or 0
            rows = db.session.execute(
                select(CallEvent.call_id, func.max(CallEvent.id))
                .where(CallEvent.id > self.high_water)
                .group_by(CallEvent.call_id)
            ).all()
            db.session.remove()
        self.high_water = max([self.high_water, *(newest for _call, newest in rows)])
        self.learn({call_id: [newest] for call_id, newest in rows}, seen=True)

    def _look_back(self) -> None:
        while not self.stopped.is_set():
            try:
                self.look_back_once()
            except Exception:  # a busy database: try again next tick
                log.warning("Could not look back for call events", exc_info=True)
            self.stopped.wait(LOOK_BACK_TICK_SECONDS)

    def look_back_once(self) -> None:
        """Learn of every event that became visible lately, whichever call it is in."""
        with self.app.app_context():
            events = self.look_back.read()
            db.session.remove()
        self.learn(events, seen=True)
        self._forget_old()

    def _forget_old(self) -> None:
        """Forget events learned long ago, and the calls nobody watches that have none left."""
        before = time.monotonic() - LEARNED_SECONDS
        with self.mutex:
            for call_id in list(self.learned):
                known = self.learned[call_id]
                for event_id in [e for e, at in known.items() if at < before]:
                    del known[event_id]
                if call_id in self.heard:
                    self.heard[call_id].intersection_update(known)
                if not known and call_id not in self.waiting:
                    del self.learned[call_id]
                    self.heard.pop(call_id, None)
                    self.version.pop(call_id, None)
                    self.newest.pop(call_id, None)


def _recent_rows(engine, call_id: int, floor: int, also: Iterable[int] = ()) -> list:
    """A call's events after ``floor``, and the ones named in ``also`` whatever their id."""
    wanted = CallEvent.id > floor
    also = list(also)
    if also:
        wanted = or_(wanted, CallEvent.id.in_(also))
    query = (
        select(CallEvent.id, CallEvent.kind, CallEvent.audience, CallEvent.data)
        .where(CallEvent.call_id == call_id, wanted)
        .order_by(CallEvent.id)
        .limit(READ_LIMIT)
    )
    with engine.connect() as connection:
        return list(connection.execute(query))
