"""Beat's lock while Redis is away, on any machine: a real address where nothing listens
refuses every connection. Beat sends nothing without its lock, never stops for good, and
stops cleanly. (tests/test_scale_out.py takes a real Redis away and brings it back.)"""

import logging

import pytest

from tests.processes import free_port
from vcpay import create_app
from workers import BEAT_LOOP_SECONDS
from workers.beat import LockedScheduler


@pytest.fixture
def celery_app(tmp_path):
    """Celery bound to the factory, as `make run-prod` starts beat: locked, on a Redis that
    refuses every connection."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'vcpay.sqlite'}",
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "BEAT_LOCK": True,
            "CELERY_BROKER_URL": "memory://",
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    yield app.extensions["celery"]
    app.extensions["call_waker"].stop()


def sent_tasks(monkeypatch, scheduler: LockedScheduler) -> list:
    sent: list = []
    monkeypatch.setattr(scheduler, "apply_async", lambda entry, **kw: sent.append(entry.name))
    return sent


def test_the_locked_scheduler_is_the_one_beat_uses(celery_app):
    assert celery_app.conf.beat_scheduler == "workers.beat:LockedScheduler"


def test_a_beat_started_while_redis_is_away_waits_without_sending(celery_app, monkeypatch, caplog):
    with caplog.at_level(logging.INFO, logger="celery.beat"):
        scheduler = LockedScheduler(app=celery_app)  # stores its schedule: refused
        assert scheduler.schedule_pending and scheduler.lock is None
        assert scheduler.lock_key  # it is a locked beat, only without the lock
        sent = sent_tasks(monkeypatch, scheduler)
        # Each tick tries to take the lock, fails, and asks to be called again shortly.
        assert [scheduler.tick() for _ in range(3)] == [BEAT_LOOP_SECONDS] * 3
    assert sent == [] and scheduler.lock is None
    messages = [record.getMessage() for record in caplog.records]
    assert any("the schedule is stored once it is back" in m for m in messages)
    assert sum("Without the lock" in m for m in messages) == 3
    assert not any("Acquired lock" in m for m in messages)


def test_a_beat_holding_the_lock_when_redis_goes_away_sends_nothing_and_keeps_trying(
    celery_app, monkeypatch, caplog
):
    scheduler = LockedScheduler(app=celery_app)
    sent = sent_tasks(monkeypatch, scheduler)
    # The lock as beat holds it once taken: its token is this beat's own.
    scheduler.lock = scheduler._new_lock()
    scheduler.lock.local.token = b"taken-before-redis-went-away"
    with caplog.at_level(logging.WARNING, logger="celery.beat"):
        # Its schedule still has to be stored: that fails, and the tick sends nothing.
        assert scheduler.tick() == BEAT_LOOP_SECONDS
        assert scheduler.schedule_pending
        # Stored (as far as it knows): extending the lock is refused now.
        scheduler.schedule_pending = False
        assert scheduler.tick() == BEAT_LOOP_SECONDS
    assert sent == []
    assert scheduler.lock is not None  # kept: Redis may come back before it lapses
    assert "Redis is away (ConnectionError); trying again shortly" in caplog.text


def test_a_beat_whose_lock_lapsed_sends_nothing_until_it_has_it_again(
    celery_app, monkeypatch, caplog
):
    scheduler = LockedScheduler(app=celery_app)
    sent = sent_tasks(monkeypatch, scheduler)
    scheduler.lock = scheduler._new_lock()  # no token: it is no longer this beat's
    scheduler.schedule_pending = False
    with caplog.at_level(logging.WARNING, logger="celery.beat"):
        assert scheduler.tick() == BEAT_LOOP_SECONDS
    assert sent == []
    assert "The lock lapsed; sending nothing until this beat has it again" in caplog.text


def test_a_beat_stopped_while_redis_is_away_leaves_its_lock_to_lapse(celery_app, caplog):
    scheduler = LockedScheduler(app=celery_app)
    scheduler.lock = scheduler._new_lock()
    scheduler.lock.local.token = b"taken-before-redis-went-away"
    with caplog.at_level(logging.WARNING, logger="celery.beat"):
        scheduler.close()  # releasing the lock is refused: closing goes on without it
    assert scheduler.lock is None
    assert "the lock lapses by itself" in caplog.text
