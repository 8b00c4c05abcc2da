"""External services the suite can use: PostgreSQL and Redis, when they are reachable.

Where one is missing its tests skip with the reason; with ``VCPAY_REQUIRE_SERVICES=1`` (CI)
they fail instead, so a missing service can never pass silently.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

POSTGRES_ENV = "VCPAY_TEST_DATABASE_URL"
REDIS_ENV = "VCPAY_TEST_REDIS_URL"


def services_required() -> bool:
    return os.environ.get("VCPAY_REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    if services_required():
        pytest.fail(f"{reason} (VCPAY_REQUIRE_SERVICES=1 makes this a failure)")
    pytest.skip(reason)


def postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        unavailable(
            f"PostgreSQL tests need {POSTGRES_ENV}, e.g. postgresql+psycopg://127.0.0.1/test"
        )
    return url


def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if not url:
        unavailable(f"Redis tests need {REDIS_ENV}, e.g. redis://127.0.0.1:6379/15")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        unavailable(f"Redis at {url} is not reachable: {error}")
    return url


@contextmanager
def scratch_postgres_database():
    """A new, empty PostgreSQL database for the duration of the block."""
    admin = sa.engine.make_url(postgres_admin_url())
    name = f"vcpay_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        unavailable(f"PostgreSQL at {admin.render_as_string()} is not reachable: {error}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextmanager
def empty_database(backend: str, folder) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in ``folder``, or a new PostgreSQL one."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'vcpay.sqlite'}"
        return
    with scratch_postgres_database() as url:
        yield url


def forget_beat(redis: str, database_url: str) -> None:
    """Delete what beat kept in Redis for a scratch database (its schedule; its lock has
    expired or been released): the suite's Redis outlives every run."""
    import redis as redis_py

    from workers import beat_lock_prefix

    client = redis_py.Redis.from_url(redis, socket_connect_timeout=2)
    try:
        keys = list(client.scan_iter(f"{beat_lock_prefix(database_url)}*"))
        if keys:
            client.delete(*keys)
    except redis_py.RedisError:
        pass  # Redis gone at the end of a run: nothing to tidy
    finally:
        client.close()
