"""Live call updates: events recorded with the change, streamed as Server-Sent Events.

A stream never holds a database connection while it waits. One waker per process learns of
new events (from Redis pub/sub when configured, else by one short query every
``STREAM_POLL_SECONDS``) and wakes only the streams of the calls concerned, so hundreds of
open streams cost one subscription or one query, not one each.

Each open stream holds a server thread, so streams are capped per process: per viewer and
per address (one more ends the oldest, as a reopened tab would) and in all, leaving
``STREAM_RESERVED_THREADS`` for pages, sign-in and webhooks.
"""

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Flask, Response, abort, current_app, g, has_request_context, request
from sqlalchemy import func, or_, select
from werkzeug.exceptions import ServiceUnavailable

from vcpay.calls.events import CallEventKind
from vcpay.calls.models import Audience, Call, CallEvent
from vcpay.config import redis_client_options
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.transactions import after_commit

log = logging.getLogger(__name__)
CHANNEL = "vcpay:call-events"
KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 60.0  # how soon a stream notices the viewer lost the right to see the call
LOOKBACK = timedelta(seconds=30)
SHARE_SECONDS = 0.5
RECONNECT_MILLISECONDS = 2000
BUSY_RETRY_SECONDS = 5  # Retry-After when this process has no thread to spare for a stream
# An event id as a browser sends it back: ASCII digits only, and short enough to parse
# cheaply; any such value past the call's newest event means "the newest".
EVENT_ID = re.compile(r"[0-9]{1,32}")


def record_event(
    call: Call, kind: CallEventKind, audience: Audience = Audience.EVERYONE, **data: Any
):
    """Add an event to the caller's transaction; streams hear of it once it commits."""
    event = CallEvent(call=call, kind=kind, audience=audience.value, data=data)
    db.session.add(event)
    db.session.flush()
    waker = current_app.extensions.get("call_waker")
    if waker is not None:
        call_id, event_id = call.id, event.id
        after_commit(db.session(), lambda: _announce_when_answered(waker, call_id, event_id))
    return event


def _announce_when_answered(waker: "CallWaker", call_id: int, event_id: int) -> None:
    """In a web request, wake the streams once the answer has gone out: the person who made
    the change is not kept waiting while every screen on the call catches up."""
    if not has_request_context():
        waker.announce(call_id, event_id)
        return
    g.setdefault("call_announcements", []).append((waker, call_id, event_id))


def _send_announcements(response: Response) -> Response:
    announcements = g.pop("call_announcements", [])
    if announcements:
        response.call_on_close(
            lambda: [waker.announce(call, event) for waker, call, event in announcements]
        )
    return response


def latest_event_id(call_id: int) -> int:
    return db.session.scalar(select(func.max(CallEvent.id)).filter_by(call_id=call_id)) or 0


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


@dataclass(eq=False)
class OpenStream:
    """One open call stream: whose, from where, and whether a newer one has ended it."""

    call_id: int
    viewer: str
    address: str
    ended: threading.Event = field(default_factory=threading.Event)
    reason: str = ""  # "session" or "address": which cap a newer stream went over


def stream_ceiling(threads: int, reserved: int) -> int:
    """How many streams one process may hold: its threads less the reserve, and at least half
    of them (a reserve larger than that would leave no room for call screens at all)."""
    return max(threads - reserved, threads // 2)


class OpenStreams:
    """The call streams open in this process, oldest first, and the caps they live under."""

    def __init__(self, app: Flask, waker: CallWaker):
        self.config = app.config
        self.waker = waker
        self.lock = threading.Lock()
        self.streams: list[OpenStream] = []

    @property
    def ceiling(self) -> int:
        return stream_ceiling(self.config["WEB_THREADS"], self.config["STREAM_RESERVED_THREADS"])

    def open(self, call_id: int, viewer: str, address: str) -> OpenStream | None:
        """Register a new stream, ending the oldest of its viewer or address beyond their
        caps; None when the process has no thread to spare for it."""
        stream = OpenStream(call_id, viewer, address)
        with self.lock:
            replaced = self._beyond_caps(stream)
            if len(self.streams) - len(replaced) >= self.ceiling:
                return None
            for old, reason in replaced:
                self.streams.remove(old)
                old.reason = reason
            self.streams.append(stream)
        for old, _reason in replaced:
            old.ended.set()
            self.waker.wake(old.call_id)  # at once, not at its next keepalive
        return stream

    def close(self, stream: OpenStream) -> None:
        with self.lock:
            if stream in self.streams:
                self.streams.remove(stream)

    def _beyond_caps(self, new: OpenStream) -> list[tuple[OpenStream, str]]:
        """The oldest streams a new one pushes over the viewer's cap, then the address's."""
        replaced: list[tuple[OpenStream, str]] = []
        caps = (
            ("session", "viewer", self.config["STREAMS_PER_SESSION"]),
            ("address", "address", self.config["STREAMS_PER_ADDRESS"]),
        )
        for reason, key, cap in caps:
            gone = {old for old, _ in replaced}
            same = [
                s for s in self.streams
                if getattr(s, key) == getattr(new, key) and s not in gone
            ]  # fmt: skip
            replaced += [(old, reason) for old in same[: max(len(same) - max(cap, 1) + 1, 0)]]
        return replaced


def sse(event) -> str:
    payload = json.dumps({"id": event.id, "kind": event.kind, **event.data})
    return f"id: {event.id}\ndata: {payload}\n\n"


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


def _allowed(app: Flask, call_id: int, still_allowed) -> bool:
    with app.app_context():
        call = db.session.get(Call, call_id)
        allowed = call is not None and still_allowed(call)
        db.session.remove()
    return allowed


def stream_events(
    app: Flask,
    call_id: int,
    after: int,
    audiences: tuple[str, ...],
    still_allowed,
    opened: OpenStream | None = None,
) -> Iterator[str]:
    """The event stream of one call for one viewer, resuming after event ``after``.

    It ends after ``STREAM_MAX_SECONDS`` (the browser reconnects with ``Last-Event-ID``), when
    ``still_allowed(call)`` says the viewer may no longer see the call, or at once when a newer
    stream of the same viewer or address replaces ``opened`` (``event: replaced``: the page
    says so rather than reconnecting). The permission check is repeated every
    ``RECHECK_SECONDS``, not on every event: the streams of a call woken by an event share one
    small query, and cost little more.
    """
    waker: CallWaker = app.extensions["call_waker"]
    opened = opened or OpenStream(call_id, "", "")
    with app.app_context():
        engine = db.engine
    deadline = time.monotonic() + app.config["STREAM_MAX_SECONDS"]
    check_again = 0.0
    resumed_after, sent, look_back = after, set(), False
    yield f"retry: {RECONNECT_MILLISECONDS}\n\n"
    while time.monotonic() < deadline:
        if opened.ended.is_set():
            yield f"event: replaced\ndata: {json.dumps({'reason': opened.reason})}\n\n"
            return
        if time.monotonic() >= check_again:
            if not _allowed(app, call_id, still_allowed):
                yield "event: closed\ndata: {}\n\n"
                return
            check_again = time.monotonic() + RECHECK_SECONDS
        rows = waker.recent_events(engine, call_id, after, look_back)
        fresh = [
            row for row in rows
            if row.id > resumed_after and row.id not in sent and row.audience in audiences
        ]  # fmt: skip
        sent |= {row.id for row in fresh}
        if look_back:  # forget what no later query can return again
            sent &= {row.id for row in rows}
        after = max([after, *(row.id for row in rows)])
        if fresh:
            yield "".join(sse(row) for row in fresh)
            continue
        # A quiet spell: look back once for an event that committed late, below ``after``.
        look_back = not waker.wait(
            call_id, after, min(KEEPALIVE_SECONDS, deadline - time.monotonic()), opened.ended
        )
        if look_back:
            yield ": keepalive\n\n"


def resume_after(call_id: int) -> int:
    """The event to resume after, from ``Last-Event-ID`` (or ``?after=``): 400 unless it is an
    event id, and the call's newest event when it names a later one."""
    after = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
    if not EVENT_ID.fullmatch(after):
        abort(400)
    return min(int(after), latest_event_id(call_id))


def stream_response(call: Call, audiences: tuple[str, ...], still_allowed, viewer: str) -> Response:
    """The event stream for a view, resuming after ``Last-Event-ID`` (or ``?after=``).

    ``viewer`` names whose stream it is (a signed-in person, a patient who joined) for the
    per-viewer cap; beyond this process's ceiling the answer is 503 with ``Retry-After``.
    """
    after = resume_after(call.id)
    streams: OpenStreams = current_app.extensions["call_streams"]
    opened = streams.open(call.id, viewer, request.remote_addr or "")
    if opened is None:
        raise ServiceUnavailable(retry_after=BUSY_RETRY_SECONDS)
    app = current_app._get_current_object()
    response = Response(
        stream_events(app, call.id, after, audiences, still_allowed, opened),
        mimetype="text/event-stream",
    )
    response.call_on_close(lambda: streams.close(opened))
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy must not hold events back
    return response


def register_live_events(app: Flask) -> None:
    """The process's waker and its open streams, and the hook that wakes them once a request
    that recorded events has answered."""
    waker = CallWaker(app)
    app.extensions["call_waker"] = waker
    app.extensions["call_streams"] = OpenStreams(app, waker)
    app.after_request(_send_announcements)


STAFF_AUDIENCES = (Audience.EVERYONE.value, Audience.STAFF.value)
PATIENT_AUDIENCES = (Audience.EVERYONE.value,)
