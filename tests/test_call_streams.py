"""Open call streams are capped, so one guest link cannot hold every thread of the web server.

Per viewer and per address a new stream ends the oldest (which says so: ``event: replaced``);
past the process's ceiling a new stream gets 503 with ``Retry-After``; ``after`` is an event id
or a 400, and one past the call's newest event means the newest. The last test runs the real
gunicorn command of ``make run`` and opens more streams than it has threads.
"""

import json
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from sandbox.demo import web_command
from tests.conftest import CSRF_FIELD, csrf_token, sign_in
from tests.journeys import save_screenshot
from tests.processes import free_port, product_environment, running, wait_for
from tests.stripe_events import event, signed
from vcpay.calls import stream as call_stream
from vcpay.calls.events import CallEventKind, record_event
from vcpay.calls.models import Call
from vcpay.calls.services import start_call
from vcpay.calls.waker import CallWaker
from vcpay.extensions import db
from vcpay.people.demo import seed_demo
from vcpay.people.models import User


def registry(app, per_session=4, per_address=50, threads=256, reserved=32):
    app.config.update(
        STREAMS_PER_SESSION=per_session,
        STREAMS_PER_ADDRESS=per_address,
        WEB_THREADS=threads,
        STREAM_RESERVED_THREADS=reserved,
    )
    waker = CallWaker(app)
    waker.started = True  # no background listener: nothing here needs events from elsewhere
    return call_stream.OpenStreams(app, waker)


# The registry and its caps.


def test_a_viewer_beyond_the_cap_ends_its_oldest_stream_at_once(app):
    streams = registry(app, per_session=2)
    first, second = streams.open(1, "guest:7", "10.0.0.1"), streams.open(1, "guest:7", "10.0.0.1")
    woken = []
    # The first stream waits as if for its keepalive, a minute away.
    waiting = threading.Thread(
        target=lambda: woken.append(
            streams.waker.wait(1, version=0, timeout=60, ended=first.ended)
        ),
        daemon=True,
    )
    waiting.start()
    wait_for(lambda: streams.waker.waiting.get(1), 10, "the first stream to wait")
    third = streams.open(1, "guest:7", "10.0.0.1")
    waiting.join(timeout=10)
    assert woken == [True]  # ended within seconds, not at its keepalive
    assert first.ended.is_set() and first.reason == "session"
    assert not second.ended.is_set() and not third.ended.is_set()
    assert streams.streams == [second, third]


def test_replacement_ends_the_viewers_oldest_stream_first(app):
    streams = registry(app, per_session=2)
    a1 = streams.open(1, "person:1", "10.0.0.1")
    b1 = streams.open(1, "person:2", "10.0.0.1")
    a2 = streams.open(2, "person:1", "10.0.0.1")
    a3 = streams.open(1, "person:1", "10.0.0.1")
    assert [s.ended.is_set() for s in (a1, b1, a2, a3)] == [True, False, False, False]
    a4 = streams.open(3, "person:1", "10.0.0.1")
    assert a2.ended.is_set() and not a3.ended.is_set()
    streams.close(a4)  # a stream that ends by itself frees its place
    a5 = streams.open(1, "person:1", "10.0.0.1")
    assert not a3.ended.is_set()
    assert streams.streams == [b1, a3, a5]


def test_an_address_beyond_its_cap_ends_the_oldest_stream_from_it(app):
    streams = registry(app, per_address=3)
    office = [streams.open(1, f"guest:{n}", "203.0.113.5") for n in range(3)]
    elsewhere = streams.open(1, "guest:9", "198.51.100.7")
    newest = streams.open(2, "person:4", "203.0.113.5")
    assert office[0].ended.is_set() and office[0].reason == "address"
    assert not any(s.ended.is_set() for s in (*office[1:], elsewhere, newest))


def test_beyond_the_ceiling_no_stream_opens_and_none_is_ended(app):
    streams = registry(app, per_session=1, threads=6, reserved=2)
    held = [streams.open(1, f"guest:{n}", f"10.0.0.{n}") for n in range(4)]
    assert streams.open(1, "guest:99", "10.0.0.99") is None
    assert not any(s.ended.is_set() for s in held)
    again = streams.open(1, "guest:0", "10.0.0.0")  # a reopened tab takes its own old place
    assert again is not None and held[0].ended.is_set()
    streams.close(held[1])
    assert streams.open(1, "guest:99", "10.0.0.99") is not None


def test_the_ceiling_keeps_threads_for_everything_else():
    assert call_stream.stream_ceiling(256, 32) == 224
    assert call_stream.stream_ceiling(12, 4) == 8
    assert call_stream.stream_ceiling(12, 32) == 6  # a reserve too large for the server leaves half
    assert call_stream.stream_ceiling(1, 32) == 0


# Through the views.


@pytest.fixture
def call(app) -> Call:
    organisation = seed_demo()
    clinic = next(c for c in organisation.clinics if c.name == "Harbourside GP Clinic")
    clinician = db.session.scalar(select(User).filter_by(email="clinician@harbourside.example"))
    started = start_call(clinic, clinician, "Pat Citizen")
    db.session.commit()
    return started


def join(app, call, name="Pat Citizen", address="127.0.0.1"):
    patient = app.test_client()
    patient.environ_base["REMOTE_ADDR"] = address
    token = csrf_token(patient, f"/join/{call.guest_token}")
    answer = patient.post(
        f"/join/{call.guest_token}", data={"csrf_token": token, "display_name": name}
    )
    assert answer.status_code == 303
    return patient


def open_stream(browser, path, **headers):
    """A stream left open, as a call screen holds it: read it chunk by chunk."""
    response = browser.get(path, headers=headers, buffered=False)
    return response, (chunk.decode() for chunk in response.response)


def test_a_patients_fifth_stream_replaces_their_first_and_it_says_so(app, call):
    patient = join(app, call)
    path = f"/join/{call.guest_token}/events"
    opened = [open_stream(patient, path) for _ in range(5)]
    try:
        assert [response.status_code for response, _ in opened] == [200] * 5
        first = opened[0][1]
        assert next(first).startswith("retry:")
        assert next(first) == 'event: replaced\ndata: {"reason": "session"}\n\n'
        assert next(first, None) is None  # and it ends, freeing its thread
        newest = opened[4][1]
        assert next(newest).startswith("retry:")
        assert len(app.extensions["call_streams"].streams) == 4
    finally:
        for response, _ in opened:
            response.close()
    assert app.extensions["call_streams"].streams == []


def test_streams_from_one_address_beyond_its_cap_replace_the_oldest(app, call):
    app.config["STREAMS_PER_ADDRESS"] = 2
    patients = [join(app, call, f"Person {n}") for n in range(3)]
    path = f"/join/{call.guest_token}/events"
    opened = [open_stream(patient, path) for patient in patients]
    try:
        oldest = opened[0][1]
        next(oldest)
        assert json.loads(next(oldest).split("data: ")[1]) == {"reason": "address"}
    finally:
        for response, _ in opened:
            response.close()


def test_beyond_the_ceiling_a_stream_is_refused_with_503_and_retry_after(app, call):
    app.config.update(WEB_THREADS=2, STREAM_RESERVED_THREADS=1)  # room for one stream
    clinician = app.test_client()
    sign_in(clinician, "clinician@harbourside.example")
    patient = join(app, call)
    held, _ = open_stream(clinician, f"/calls/{call.id}/events")
    assert held.status_code == 200
    refused = patient.get(f"/join/{call.guest_token}/events")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == str(call_stream.BUSY_RETRY_SECONDS)
    held.close()
    again, _ = open_stream(patient, f"/join/{call.guest_token}/events")
    assert again.status_code == 200
    again.close()


@pytest.mark.parametrize(
    "where",
    [{"query": "999999"}, {"Last-Event-ID": "999999999999999999999999999999"}],
    ids=["after", "last-event-id"],
)
def test_an_event_id_past_the_calls_newest_means_the_newest(app, call, monkeypatch, where):
    monkeypatch.setattr(call_stream, "KEEPALIVE_SECONDS", 0.3)
    app.config["STREAM_MAX_SECONDS"] = 3  # today's code would wait for id 999999 until then
    patient = join(app, call)
    query = f"?after={where.pop('query')}" if "query" in where else ""
    response, chunks = open_stream(patient, f"/join/{call.guest_token}/events{query}", **where)
    try:
        assert response.status_code == 200
        assert next(chunks).startswith("retry:")
        fresh = record_event(db.session.get(Call, call.id), CallEventKind.PAYMENT_REQUESTED)
        db.session.commit()
        delivered = "".join(next(chunks) for _ in range(2))
        assert f"id: {fresh.id}\n" in delivered
    finally:
        response.close()


MALFORMED = ["²", "١٢", "-1", "+5", " 5", "1e3", "0x10", "5.0", "9" * 5000]


@pytest.mark.parametrize("value", MALFORMED)
def test_a_malformed_event_id_is_refused_with_400(app, call, value):
    patient = join(app, call)
    clinician = app.test_client()
    sign_in(clinician, "clinician@harbourside.example")
    assert patient.get(f"/join/{call.guest_token}/events?after={value}").status_code == 400
    assert clinician.get(f"/calls/{call.id}/events?after={value}").status_code == 400
    if value.isascii():  # a header carries Latin-1 only
        headers = {"Last-Event-ID": value}
        assert clinician.get(f"/calls/{call.id}/events", headers=headers).status_code == 400
    assert app.extensions["call_streams"].streams == []


# The real web server.


class RawStream:
    """An event stream held open on a plain socket, as a browser tab holds it."""

    def __init__(self, port: int, path: str, cookie: str):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.socket.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
            f"Cookie: {cookie}\r\n\r\n".encode()
        )
        self.socket.setblocking(False)
        self.received = b""

    @property
    def status(self) -> int | None:
        head = self.received.split(b"\r\n", 1)[0].split(b" ")
        return int(head[1]) if len(head) > 2 else None

    @property
    def replaced(self) -> bool:
        return b"event: replaced" in self.received

    @property
    def open(self) -> bool:
        return self.status == 200 and b"retry:" in self.received and not self.replaced

    @property
    def answered(self) -> bool:
        return self.open or self.replaced or self.status not in (None, 200)


def read_streams(streams: list[RawStream], done, seconds: float) -> None:
    """Read whatever the server sends the streams until ``done()`` or ``seconds`` pass."""
    selector = selectors.DefaultSelector()
    for stream in streams:
        selector.register(stream.socket, selectors.EVENT_READ, stream)
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.1):
            try:
                data = key.fileobj.recv(65536)
            except OSError:
                data = b""
            key.data.received += data
            if not data:
                selector.unregister(key.fileobj)
    selector.close()


def opened_one_by_one(port: int, path: str, cookie: str, count: int) -> list[RawStream]:
    """Streams opened one after the other, as tabs are, each once it has its first answer."""
    streams = []
    for _ in range(count):
        streams.append(RawStream(port, path, cookie))
        read_streams(streams[-1:], lambda: streams[-1].answered, 1)
    return streams


def joined_guest(url: str, token: str, name: str) -> requests.Session:
    guest = requests.Session()
    guest.trust_env = False
    page = guest.get(f"{url}/join/{token}", timeout=5).text
    answer = guest.post(
        f"{url}/join/{token}",
        data={"csrf_token": CSRF_FIELD.search(page).group(1), "display_name": name},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 303
    return guest


def cookie_header(session: requests.Session) -> str:
    return "; ".join(f"{name}={value}" for name, value in session.cookies.items())


def answer_times(url: str) -> dict[str, tuple[int, float]]:
    """Status and seconds of /healthz, the sign-in page and a signed Stripe webhook."""
    other = requests.Session()
    other.trust_env = False
    payload, signature = signed(event("account.updated", account="acct_streams_probe"))
    asks = {
        "healthz": lambda: other.get(f"{url}/healthz", timeout=5),
        "sign-in": lambda: other.get(f"{url}/sign-in", timeout=5),
        "webhook": lambda: other.post(
            f"{url}/webhooks/stripe",
            data=payload,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            timeout=5,
        ),
    }
    times = {}
    for name, ask in asks.items():
        started = time.monotonic()
        try:
            status = ask().status_code
        except requests.RequestException:
            status = 0  # no answer within the timeout: every thread is taken
        times[name] = (status, round(time.monotonic() - started, 2))
    return times


def answered_quickly(times: dict[str, tuple[int, float]]) -> bool:
    return all(status == 200 and seconds < 2 for status, seconds in times.values())


THREADS, RESERVED, WORKERS = 12, 4, 2  # as make run starts gunicorn, on a smaller scale
PER_VIEWER = 4  # VCPAY_STREAMS_PER_SESSION's default


@contextmanager
def web_server(app, folder: Path, workers: int = WORKERS, **settings: str) -> Iterator[str]:
    """gunicorn as `make run` starts it (gthread), on the test's database and a free port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    threads = int(settings.get("VCPAY_WEB_THREADS", app.config["WEB_THREADS"]))
    web = web_command({**app.config, "PUBLIC_URL": url, "WEB_THREADS": threads})
    web[web.index("--workers") + 1] = str(workers)
    env = product_environment(
        VCPAY_INSTANCE_PATH=str(folder / "instance"),
        VCPAY_DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        VCPAY_PUBLIC_URL=url,
        **settings,
    )
    log = folder / "gunicorn.log"
    with running(web, env, log):
        wait_for(lambda: _answers(f"{url}/healthz"), 60, "gunicorn to answer", log)
        yield url


def test_streams_from_one_guest_link_never_take_the_threads_pages_and_webhooks_need(
    app, call, tmp_path: Path
):
    opened: list[RawStream] = []
    settings = {
        "VCPAY_WEB_THREADS": str(THREADS),
        "VCPAY_STREAM_RESERVED_THREADS": str(RESERVED),
    }
    with web_server(app, tmp_path, **settings) as url:
        port = int(url.rsplit(":", 1)[1])
        path = f"/join/{call.guest_token}/events?after=999999"
        guest = cookie_header(joined_guest(url, call.guest_token, "Pat Citizen"))
        # A burst, as the probe sent: more streams than both processes have threads.
        mine = [RawStream(port, path, guest) for _ in range(THREADS * WORKERS * 5 // 2)]
        opened += mine
        # Each process keeps this guest's newest few; the others are told at once (the
        # keepalive that would otherwise notice them is 15 s away).
        still_open = WORKERS * PER_VIEWER
        settled = lambda: sum(s.replaced for s in mine) >= len(mine) - still_open  # noqa: E731
        read_streams(mine, lambda: settled() and all(s.answered for s in mine), 5)
        times = answer_times(url)
        assert answered_quickly(times), times
        assert sum(s.open for s in mine) <= still_open
        assert sum(s.replaced for s in mine) >= len(mine) - still_open
        # A tab opened after them: it follows the call, and an older stream made way.
        mine += opened_one_by_one(port, path, guest, 1)
        opened += mine[-1:]
        read_streams(mine, lambda: sum(s.open for s in mine) <= still_open, 3)
        assert mine[-1].open and sum(s.open for s in mine) <= still_open

        # Many guests (each join is a new one): beyond each process's ceiling, 503.
        guests = [cookie_header(joined_guest(url, call.guest_token, f"G{n}")) for n in range(5)]
        crowd = [RawStream(port, path, cookie) for cookie in guests for _ in range(THREADS)]
        opened += crowd
        read_streams(crowd, lambda: all(s.answered for s in crowd), 10)
        times = answer_times(url)
        assert answered_quickly(times), times
        refused = [s for s in crowd if s.status == 503]
        assert refused and all(b"\r\nretry-after: 5\r\n" in s.received.lower() for s in refused)
        assert sum(s.open for s in opened) <= WORKERS * (THREADS - RESERVED)
        for stream in opened:
            stream.socket.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.browser
def test_a_screen_replaced_by_a_newer_tab_says_so_and_can_follow_the_call_again(
    app, call, tmp_path: Path, chromium
):
    settings = {"VCPAY_STREAMS_PER_SESSION": "1"}
    with web_server(app, tmp_path, workers=1, **settings) as url:
        context = chromium.new_context()
        first = context.new_page()
        first.goto(f"{url}/join/{call.guest_token}")
        first.get_by_label("Your name").fill("Pat Citizen")
        first.get_by_role("button", name="Join the call").click()
        first.get_by_text("You joined as Pat Citizen.").wait_for()
        replaced = "This call is being followed in another tab or window"
        assert not first.get_by_text(replaced).is_visible()

        second = context.new_page()
        second.goto(f"{url}/join/{call.guest_token}")
        first.get_by_text(replaced).wait_for(timeout=5000)
        save_screenshot(first, "call-stream-replaced")
        assert not second.get_by_text(replaced).is_visible()

        first.get_by_role("button", name="Follow the call here").click()
        second.get_by_text(replaced).wait_for(timeout=5000)
        assert not first.get_by_text(replaced).is_visible()
        context.close()


@pytest.mark.browser
def test_a_screen_refused_by_a_busy_server_tries_again_until_it_follows_the_call(
    app, call, tmp_path: Path, chromium
):
    settings = {
        "VCPAY_WEB_THREADS": "4",
        "VCPAY_STREAM_RESERVED_THREADS": "3",  # room for two streams: half the threads
        "VCPAY_STREAM_MAX_SECONDS": "4",  # the streams holding the room end soon after
    }
    with web_server(app, tmp_path, workers=1, **settings) as url:
        port = int(url.rsplit(":", 1)[1])
        path = f"/join/{call.guest_token}/events"
        holders = [
            RawStream(port, path, cookie_header(joined_guest(url, call.guest_token, f"G{n}")))
            for n in range(2)
        ]  # they never reconnect once the server ends them
        read_streams(holders, lambda: all(h.open for h in holders), 5)
        assert all(h.open for h in holders)

        page = chromium.new_context().new_page()
        page.goto(f"{url}/join/{call.guest_token}")
        page.get_by_label("Your name").fill("Pat Citizen")
        page.get_by_role("button", name="Join the call").click()
        paused = page.get_by_text("Live updates are paused. Trying again shortly")
        paused.wait_for(timeout=5000)
        save_screenshot(page, "call-stream-paused")
        paused.wait_for(state="hidden", timeout=20000)  # the room freed, it follows again
        joined_guest(url, call.guest_token, "Sam Carer")  # an event for the call
        page.get_by_text("Sam Carer").first.wait_for(timeout=5000)
        for holder in holders:
            holder.socket.close()
        page.context.close()
