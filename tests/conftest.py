"""Fixtures: an application on a real database (SQLite, and PostgreSQL where configured)."""

import contextvars
import os
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete

from tests.broker import broker  # noqa: F401 - the in-memory broker's queue
from tests.browser import chromium  # noqa: F401 - one browser for the whole session
from tests.journeys import ARTIFACTS, journey_product  # noqa: F401 - `make run` for journeys
from tests.services import empty_database
from tests.stripe_standin import standin, stripe_control, webhooks  # noqa: F401 - fixtures
from vcpay import create_app
from vcpay.extensions import db, limiter
from vcpay.people.demo import seed_demo

# A sign-in from a new browser emails the person; every test client is a new browser, so only
# the tests of that email turn it on (tests/test_sessions_page.py), and other tests' outboxes
# hold only what they are about.
os.environ.setdefault("VCPAY_NEW_BROWSER_EMAILS", "0")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """The journeys run last, one shape after the other (as pytest grouped them): the product
    they share then never runs beside other tests, taking their CPU or their shared Redis.

    A module marked ``any_database`` runs on SQLite only: what it checks happens before or
    beside any query (rendering, permissions, password rules), so its PostgreSQL run would
    repeat the SQLite one and only lengthen the suite. Where the database's own behaviour
    matters (NUL bytes, huge integers, locks, time zones) modules are not marked.
    """
    repeated = [item for item in items if _postgresql_repeat(item)]
    if repeated:
        config.hook.pytest_deselected(items=repeated)
        dropped = set(repeated)
        items[:] = [item for item in items if item not in dropped]
    journeys = [item for item in items if "journey_product" in getattr(item, "fixturenames", ())]
    chosen = set(journeys)
    items[:] = [item for item in items if item not in chosen] + journeys


def _postgresql_repeat(item) -> bool:
    callspec = getattr(item, "callspec", None)
    backend = callspec.params.get("database_url") if callspec else None
    return backend == "postgresql" and item.get_closest_marker("any_database") is not None


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    """Each test that uses the app runs once per database backend."""
    with empty_database(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def _schema(database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    with app.app_context():
        db.create_all()
    yield database_url
    with app.app_context():
        db.engine.dispose()


def _empty_tables() -> None:
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(delete(table))
    db.session.commit()


class ServerLikeClient(FlaskClient):
    """Runs each request in its own application context, as a real server does.

    The test keeps its own context (and database session) open for setting up and checking;
    without this, requests would share it and hide bugs that only show across requests.
    """

    def open(self, *args, **kwargs):
        context = contextvars.Context()
        response = context.run(super().open, *args, **kwargs)
        if response.is_streamed and response.mimetype != "text/event-stream":
            # A server reads a streamed body in the request's own context, where a view's
            # ``stream_with_context`` pushed it; so does the test, chunk by chunk.
            response.response = _ReadIn(context, response.response)
        db.session.expire_all()  # the test sees what the request committed
        return response


class _ReadIn:
    """A streamed body read, and closed, in the context of the request that made it."""

    def __init__(self, context: contextvars.Context, body):
        self.context, self.chunks = context, context.run(iter, body)

    def __iter__(self):
        return self

    def __next__(self):
        return self.context.run(next, self.chunks)

    def close(self) -> None:
        if hasattr(self.chunks, "close"):
            self.context.run(self.chunks.close)


@pytest.fixture
def app_overrides() -> dict:
    """Settings for the ``app`` fixture beyond the usual; a module overrides this fixture to
    change them (Redis behind a fault proxy, say)."""
    return {"CELERY_BROKER_URL": "memory://", "RATELIMIT_STORAGE_URI": "memory://"}


@pytest.fixture
def app(_schema, tmp_path, app_overrides):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": _schema, **app_overrides})
    app.test_client_class = ServerLikeClient
    with app.app_context():
        _empty_tables()
        limiter.reset()
        yield app
        db.session.remove()
        _empty_tables()
        db.engine.dispose()  # its connections now, not when the collector finds the app
        if (inbox := app.extensions.get("stripe_inbox_engine")) is not None:
            inbox.dispose()
        app.extensions["call_waker"].stop()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def demo(app):
    """The demo organisation, committed."""
    organisation = seed_demo()
    db.session.commit()
    return organisation


CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client, path: str = "/sign-in") -> str:
    page = client.get(path).get_data(as_text=True)
    match = CSRF_FIELD.search(page)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, email: str, password: str = "vcpay-demo-2026", next_page: str = "", **kw):
    token = csrf_token(client)
    query = f"?next={next_page}" if next_page else ""
    return client.post(
        f"/sign-in{query}",
        data={"email": email, "password": password, "csrf_token": token},
        **kw,
    )
