"""A database that is busy (every pooled connection taken) or away answers 503 with
Retry-After: people are asked to come back in a moment, in a page that needs no database;
API clients get JSON; the log says which error it was, and nothing of the request."""

import logging
import sqlite3
import threading
from contextlib import contextmanager

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import OperationalError

from tests.conftest import sign_in
from tests.processes import free_port, wait_for
from vcpay import create_app
from vcpay.calls import waker as call_waker
from vcpay.calls.models import Call, CallEvent
from vcpay.calls.waker import CallWaker
from vcpay.errors import DATABASE_RETRY_SECONDS, is_database_unavailable
from vcpay.extensions import db
from vcpay.people.demo import seed_demo

POOL_TIMEOUT_SECONDS = 0.5
GUEST_LINK = "/join/a-patients-own-link-token"
CLINICIAN = "clinician@harbourside.example"
BUSY = "We are very busy right now. Wait a moment, then try again."


@pytest.fixture
def app_overrides() -> dict:
    """One connection in the pool, none beyond it, and a short wait for it."""
    return {
        "CELERY_BROKER_URL": "memory://",
        "RATELIMIT_STORAGE_URI": "memory://",
        "SQLALCHEMY_ENGINE_OPTIONS": {
            "pool_size": 1,
            "max_overflow": 0,
            "pool_timeout": POOL_TIMEOUT_SECONDS,
            "hide_parameters": True,
        },
    }


@pytest.fixture
def pool_taken(app):
    """The pool's one connection, held elsewhere (a long request, a stuck worker thread)."""
    db.session.remove()
    with db.engine.connect() as held:
        yield held


def assert_unavailable(answer) -> str:
    page = answer.get_data(as_text=True)
    assert answer.status_code == 503, page[:500]
    assert answer.headers["Retry-After"] == str(DATABASE_RETRY_SECONDS)
    assert "Traceback" not in page and "sqlalchemy" not in page.lower()
    return page


def test_a_patient_joining_while_the_pool_is_taken_is_asked_to_come_back(
    client, pool_taken, caplog
):
    with caplog.at_level(logging.WARNING, logger="vcpay"):
        page = assert_unavailable(client.get(GUEST_LINK))
    assert BUSY in page
    assert "Back to the start" not in page  # a patient's page leads to no staff page
    [warning] = [r for r in caplog.records if "Database busy or away" in r.getMessage()]
    assert warning.levelno == logging.WARNING and "TimeoutError" in warning.getMessage()
    assert "a-patients-own-link-token" not in caplog.text  # the link is the patient's key


def test_a_signed_in_clinician_is_answered_without_the_database(client, demo, pool_taken):
    """The usual layout would read the person, their menu and the workers' heartbeat."""
    pool_taken.close()  # signing in needs the connection; taken again just after
    sign_in(client, CLINICIAN)
    with db.engine.connect():
        page = assert_unavailable(client.get("/calls/"))
    assert BUSY in page and '<html lang="en">' in page


def test_a_page_is_offered_again_as_it_was_and_a_form_is_not(app, client, pool_taken):
    page = assert_unavailable(client.get(f"{GUEST_LINK}?lang=en"))
    assert f'href="{GUEST_LINK}?lang=en">Try again</a>' in page
    app.config["WTF_CSRF_ENABLED"] = False  # the form's token would need the database
    posted = client.post(GUEST_LINK, data={"display_name": "Ana"})
    # The rate limiter's window on this form may ask for a longer wait than the database's.
    assert posted.status_code == 503 and int(posted.headers["Retry-After"]) >= 1
    assert BUSY in (page := posted.get_data(as_text=True))
    assert "Try again</a>" not in page  # following a link would not send the form again


def test_the_page_is_in_the_language_the_browser_asks_for(client, pool_taken):
    page = assert_unavailable(client.get(GUEST_LINK, headers={"Accept-Language": "sr-Latn"}))
    assert '<html lang="sr-Latn">' in page and BUSY not in page


def test_an_api_client_gets_json(client, pool_taken):
    answer = client.get(GUEST_LINK, headers={"Accept": "application/json"})
    assert_unavailable(answer)
    assert answer.json == {"error": {"status": 503, "message": BUSY}}


def test_a_database_nobody_answers_for_is_a_503_too(tmp_path, caplog):
    """A real PostgreSQL address where nothing listens: the connection is refused."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"postgresql+psycopg://vcpay@127.0.0.1:{free_port()}/vcpay",
            "CELERY_BROKER_URL": "memory://",
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    try:
        client = app.test_client()
        with caplog.at_level(logging.WARNING, logger="vcpay"):
            page = assert_unavailable(client.get(GUEST_LINK))
            answer = client.get(GUEST_LINK, headers={"Accept": "application/json"})
        assert BUSY in page
        assert_unavailable(answer)
        assert answer.json["error"]["status"] == 503
        assert "OperationalError" in caplog.text and "Unhandled error" not in caplog.text
    finally:
        with app.app_context():
            db.engine.dispose()
        app.extensions["call_waker"].stop()


def sqlite_error(path, statement: str, hold_lock: bool) -> OperationalError:
    """A real SQLite error, as SQLAlchemy wraps it: a write while another connection holds
    the database exclusively, or a read of a table that does not exist."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS notes (x)")
    if hold_lock:
        holder.execute("BEGIN EXCLUSIVE")
    writer = sqlite3.connect(path, timeout=0)
    try:
        writer.execute(statement)
    except sqlite3.OperationalError as error:
        return OperationalError(statement, (), error)
    finally:
        writer.close()
        holder.close()
    raise AssertionError(f"{statement} did not fail")


def test_on_sqlite_only_a_locked_database_is_away_and_a_missing_table_is_a_bug(tmp_path):
    locked = sqlite_error(tmp_path / "a.sqlite", "INSERT INTO notes VALUES (1)", hold_lock=True)
    assert "locked" in str(locked.orig)
    assert is_database_unavailable(locked)
    missing = sqlite_error(tmp_path / "b.sqlite", "SELECT * FROM no_such_table", hold_lock=False)
    assert not is_database_unavailable(missing)  # answered 500, logged with its traceback


@pytest.fixture
def call_id(app) -> int:
    """A call with one event already, committed."""
    call = Call(clinic=seed_demo().clinics[0])
    db.session.add(call)
    db.session.flush()
    db.session.add(CallEvent(call=call, kind="call_started", data={}))
    db.session.commit()
    return call.id


def add_event(connection, call_id: int) -> int:
    new = insert(CallEvent).values(call_id=call_id, kind="payment_requested", data={})
    event_id = connection.execute(new.returning(CallEvent.id)).scalar_one()
    connection.commit()  # never announced: only a poll or the look-back learns of it
    return event_id


@contextmanager
def waker_thread(waker: CallWaker, target):
    """One of the waker's threads, run on its own, then stopped."""
    waker.started = True  # no other thread: this test starts the one it checks
    thread = threading.Thread(target=target, daemon=True)
    try:
        yield thread
        assert thread.is_alive()  # it outlived the busy database
    finally:
        waker.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()


def test_a_busy_database_costs_the_call_waker_a_look_back_not_its_thread(
    app, call_id, monkeypatch, caplog
):
    """The look-back's query waits for the pool like any other: while every connection is
    taken it fails, and the next tick, once one is free, finds what it missed."""
    monkeypatch.setattr(call_waker, "LOOK_BACK_TICK_SECONDS", 0.1)
    waker = CallWaker(app)
    failed = "Could not look back for call events"
    with waker_thread(waker, waker._look_back) as looking_back, caplog.at_level(logging.WARNING):
        db.session.remove()
        with db.engine.connect() as held:
            looking_back.start()
            wait_for(lambda: caplog.text.count(failed) >= 2, 10, "two look-backs to fail")
            event_id = add_event(held, call_id)  # committed while the pool is taken
            assert waker.version_of(call_id) == 0
        assert waker.wait(call_id, version=0, timeout=10) is True
        wait_for(lambda: waker.newest.get(call_id) == event_id, 10, "the missed event")


def test_a_busy_database_costs_the_call_waker_a_poll_not_its_thread(app, call_id, caplog):
    """Without Redis the waker polls; a process whose first stream opens while every
    connection is taken polls again once one is free, and learns what comes next."""
    app.config["STREAM_POLL_SECONDS"] = 0.1
    waker = CallWaker(app)
    failed = "Could not poll for call events"
    with waker_thread(waker, waker._poll) as polling, caplog.at_level(logging.WARNING):
        db.session.remove()
        with db.engine.connect():
            polling.start()
            wait_for(lambda: caplog.text.count(failed) >= 2, 10, "two polls to fail")
        wait_for(lambda: waker.high_water, 10, "a poll once a connection is free")
        assert waker.version_of(call_id) == 0  # what was there before is no news
        with db.engine.connect() as connection:
            event_id = add_event(connection, call_id)
        assert waker.wait(call_id, version=0, timeout=10) is True
        assert waker.newest[call_id] == event_id
