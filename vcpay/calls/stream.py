"""Call streams: a call's events as Server-Sent Events, for one viewer at a time.

Under gunicorn's gthread worker each open stream holds a server thread; under its gevent worker
a greenlet, out of the worker's ``--worker-connections``. Either way streams are capped per
process: per viewer and per address (one more ends the oldest, as a reopened tab would) and in
all, leaving ``STREAM_RESERVED_THREADS`` threads (or connections) for pages, sign-in and
webhooks. ``register_live_events`` sets the process's waker and open streams on the application.
"""

import json
import random
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from flask import Flask, Response, abort, current_app, request
from werkzeug.exceptions import ServiceUnavailable

from vcpay.calls.events import latest_event_id, send_announcements
from vcpay.calls.models import Call
from vcpay.calls.rechecks import AccessChecks
from vcpay.calls.waker import LEARNED_SECONDS, READ_LIMIT, CallWaker
from vcpay.extensions import db
from vcpay.observability.metrics import observe_open_streams

KEEPALIVE_SECONDS = 15.0
RECHECK_SECONDS = 60.0  # how soon a stream notices the viewer lost the right to see the call
RECONNECT_MILLISECONDS = 2000
BUSY_RETRY_SECONDS = 5  # Retry-After when this process has no room to spare for a stream
# An event id as a browser sends it back: ASCII digits only, and short enough to parse
# cheaply; any such value past the call's newest event means "the newest".
EVENT_ID = re.compile(r"[0-9]{1,32}")
CAPPED_BY = (
    ("session", "viewer", "STREAMS_PER_SESSION"),
    ("address", "address", "STREAMS_PER_ADDRESS"),
)


@dataclass(eq=False)
class OpenStream:
    """One open call stream: whose, from where, and whether a newer one has ended it."""

    call_id: int
    viewer: str
    address: str
    ended: threading.Event = field(default_factory=threading.Event)
    reason: str = ""  # "session" or "address": which cap a newer stream went over


def stream_ceiling(room: int, reserved: int) -> int:
    """How many streams one process may hold: its threads (or connections) less the reserve,
    and at least half of them (a reserve larger than that would leave no room for call
    screens at all)."""
    return max(room - reserved, room // 2)


def serving_greenlets() -> bool:
    """Whether this process serves each connection on a greenlet (gunicorn's gevent worker
    patches the standard library before it loads the application), not on a thread. Asked of
    gevent only when it is already loaded: the gthread worker never imports it."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("socket")


def stream_room(config) -> int:
    """What bounds one process's open streams: ``WEB_CONNECTIONS`` (gunicorn's
    ``--worker-connections``) under gevent, where a waiting stream costs a greenlet, else
    ``WEB_THREADS``, as each waiting stream holds one of them."""
    return config["WEB_CONNECTIONS"] if serving_greenlets() else config["WEB_THREADS"]


class OpenStreams:
    """The call streams open in this process, oldest first, and the caps they live under."""

    def __init__(self, app: Flask, waker: CallWaker):
        self.config = app.config
        self.waker = waker
        self.lock = threading.Lock()
        self.streams: list[OpenStream] = []
        # The streams of each viewer and of each address, oldest first: a new stream's caps
        # are checked against its own few, not against every stream of the process.
        self.groups: dict[tuple[str, str], list[OpenStream]] = {}
        self.texts: dict[int, str] = {}  # event id -> its text on the wire

    @property
    def ceiling(self) -> int:
        return stream_ceiling(stream_room(self.config), self.config["STREAM_RESERVED_THREADS"])

    def open(self, call_id: int, viewer: str, address: str) -> OpenStream | None:
        """Register a new stream, ending the oldest of its viewer or address beyond their
        caps; None when the process has no thread (or connection) to spare for it."""
        stream = OpenStream(call_id, viewer, address)
        with self.lock:
            replaced = self._beyond_caps(stream)
            if len(self.streams) - len(replaced) >= self.ceiling:
                return None
            for old, reason in replaced:
                self._forget(old)
                old.reason = reason
            self.streams.append(stream)
            for _reason, key, _cap in CAPPED_BY:
                self.groups.setdefault((key, getattr(stream, key)), []).append(stream)
            observe_open_streams(len(self.streams))
        for old, _reason in replaced:
            old.ended.set()
            self.waker.wake(old.call_id)  # at once, not at its next keepalive
        return stream

    def text_of(self, row) -> str:
        """An event as streams send it, written once for all the streams of its call."""
        text = self.texts.get(row.id)
        if text is None:
            if len(self.texts) > 4096:
                self.texts.clear()
            text = self.texts[row.id] = sse(row)
        return text

    def close(self, stream: OpenStream) -> None:
        with self.lock:
            if stream in self.groups.get(("viewer", stream.viewer), ()):
                self._forget(stream)
            observe_open_streams(len(self.streams))

    def _forget(self, stream: OpenStream) -> None:
        self.streams.remove(stream)
        for _reason, key, _cap in CAPPED_BY:
            group = self.groups[(key, getattr(stream, key))]
            group.remove(stream)
            if not group:
                del self.groups[(key, getattr(stream, key))]

    def _beyond_caps(self, new: OpenStream) -> list[tuple[OpenStream, str]]:
        """The oldest streams a new one pushes over the viewer's cap, then the address's."""
        replaced: list[tuple[OpenStream, str]] = []
        for reason, key, setting in CAPPED_BY:
            gone = {old for old, _ in replaced}
            group = self.groups.get((key, getattr(new, key)), [])
            same = [s for s in group if s not in gone]
            cap = self.config[setting]
            replaced += [(old, reason) for old in same[: max(len(same) - max(cap, 1) + 1, 0)]]
        return replaced


def sse(event) -> str:
    payload = json.dumps({"id": event.id, "kind": event.kind, **event.data})
    return f"id: {event.id}\ndata: {payload}\n\n"


def stream_events(
    app: Flask,
    opened: OpenStream,
    after: int,
    audiences: tuple[str, ...],
    still_allowed,
    access: str = "",
) -> Iterator[str]:
    """The event stream of one call (``opened.call_id``) for one viewer, resuming after
    event ``after``.

    It ends after about ``STREAM_MAX_SECONDS`` (the browser reconnects with ``Last-Event-ID``;
    spread over the last fifth, so streams opened together do not all come back at once), when
    ``still_allowed(call)`` says the viewer may no longer see the call, or at once when a newer
    stream of the same viewer or address replaces ``opened`` (``event: replaced``: the page
    says so rather than reconnecting). The permission check is repeated every
    ``RECHECK_SECONDS``, not on every event, and shared by the streams with the same ``access``
    key (what the check depends on: the viewer's sign-in, or the guest link). A stream reads
    only when the waker learns of an event of its call: the streams of a call woken together
    share one small query.
    """
    waker: CallWaker = app.extensions["call_waker"]
    streams: OpenStreams = app.extensions["call_streams"]
    checks: AccessChecks = app.extensions["call_access_checks"]
    call_id = opened.call_id
    access_key = f"{access or opened.viewer}:{call_id}"
    with app.app_context():
        engine = db.engine
    started = time.monotonic()
    deadline = started + spread(app.config["STREAM_MAX_SECONDS"], 0.8)
    # The view has just checked: the first re-check comes later, spread so as not to come in
    # waves either.
    check_again = started + spread(RECHECK_SECONDS, 0.5)
    resumed_after = after
    sent: dict[int, float] = {}  # the ids this stream has passed, lately: late ones are not
    read_version: int | None = None  # the waker's version of the call at the last read
    yield f"retry: {RECONNECT_MILLISECONDS}\n\n"
    while time.monotonic() < deadline:
        if opened.ended.is_set():
            yield f"event: replaced\ndata: {json.dumps({'reason': opened.reason})}\n\n"
            return
        if time.monotonic() >= check_again:
            if not checks.allowed(app, access_key, call_id, still_allowed, RECHECK_SECONDS / 4):
                yield "event: closed\ndata: {}\n\n"
                return
            check_again = time.monotonic() + RECHECK_SECONDS
        if read_version is None or waker.version_of(call_id) > read_version:
            read_version = waker.version_of(call_id)  # before the read: news during it counts
            late = waker.unsent(call_id, after, resumed_after, sent)
            rows = waker.recent_events(engine, call_id, after, late)
            fresh = [
                row
                for row in rows
                if (row.id > after or row.id in late) and row.id not in sent
                if row.id > resumed_after and row.audience in audiences
            ]
            _remember(sent, [*late, *(row.id for row in rows)])
            waker.found(call_id, [row.id for row in rows])
            after = max([after, *(row.id for row in rows)])
            if len(rows) >= READ_LIMIT:
                read_version = None  # more than one read holds: read on at once
            if fresh:
                yield "".join(streams.text_of(row) for row in fresh)
                continue
        # Nothing new: wait until the waker learns of another event of this call. One it
        # learned of that the read did not find (announced by another deployment) does not
        # wake the stream again: the version read before the query already counts it.
        # Spread: streams opened together would otherwise all send their keepalives together,
        # and a worker serving thousands of them would stall its pages for that moment.
        timeout = min(spread(KEEPALIVE_SECONDS, 0.5), deadline - time.monotonic())
        if not waker.wait(call_id, read_version or 0, timeout, opened.ended):
            _forget_old(sent)  # a quiet moment: not while a call's screens all catch up
            yield ": keepalive\n\n"


def spread(seconds: float, least: float) -> float:
    """Between ``least`` and all of ``seconds``: timers of streams opened together drift apart
    (a spread, not a secret)."""
    return seconds * random.uniform(least, 1.0)  # noqa: S311  # nosec B311


def _remember(sent: dict[int, float], event_ids: list[int]) -> None:
    """Note the ids a stream passed."""
    sent.update(dict.fromkeys(event_ids, time.monotonic()))


def _forget_old(sent: dict[int, float]) -> None:
    """Forget the ids the waker has forgotten too."""
    before = time.monotonic() - 2 * LEARNED_SECONDS
    for event_id in [e for e, at in sent.items() if at < before]:
        del sent[event_id]


def resume_after(call_id: int) -> int:
    """The event to resume after, from ``Last-Event-ID`` (or ``?after=``): 400 unless it is an
    event id, and the call's newest event when it names a later one."""
    after = request.headers.get("Last-Event-ID") or request.args.get("after") or "0"
    if not EVENT_ID.fullmatch(after):
        abort(400)
    return min(int(after), latest_event_id(call_id))


def stream_response(
    call: Call, audiences: tuple[str, ...], still_allowed, viewer: str, access: str = ""
) -> Response:
    """The event stream for a view, resuming after ``Last-Event-ID`` (or ``?after=``).

    ``viewer`` names whose stream it is (a signed-in person, a patient who joined) for the
    per-viewer cap; beyond this process's ceiling the answer is 503 with ``Retry-After``.
    ``access`` names what ``still_allowed`` depends on, for streams to share its answer.
    """
    after = resume_after(call.id)
    streams: OpenStreams = current_app.extensions["call_streams"]
    opened = streams.open(call.id, viewer, request.remote_addr or "")
    if opened is None:
        raise ServiceUnavailable(retry_after=BUSY_RETRY_SECONDS)
    app = current_app._get_current_object()
    response = Response(
        stream_events(app, opened, after, audiences, still_allowed, access),
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
    app.extensions["call_access_checks"] = AccessChecks(waker.reading)
    app.after_request(send_announcements)
