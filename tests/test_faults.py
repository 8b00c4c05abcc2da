"""Nothing is lost or doubled when a process dies or a server goes away mid-run.

Each case runs vcpay on real processes (gunicorn, a Celery worker, beat) over PostgreSQL and
Redis reached through fault proxies (tests/faults.py), pays a few dozen requests at the
Stripe stand-in (a few hundred events, a third of them delivered twice), breaks one thing
while the events flow, and then checks that every event was stored and processed once, and
that every request is paid with one popup and one receipt.
"""

import os
import signal
import threading
import time

import pytest

from tests.faults import PaymentRig
from tests.processes import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.worker, pytest.mark.timeout(90)]

PAYMENTS = 60
OUTAGE_SECONDS = 4


@pytest.fixture
def rig(tmp_path, request):
    beat_lock = getattr(request, "param", False)
    with PaymentRig(tmp_path, PAYMENTS, beat_lock=beat_lock) as running:
        yield running


class Payer(threading.Thread):
    """Patients paying, one after another, while the test breaks something."""

    def __init__(self, rig: PaymentRig):
        super().__init__(name="patients", daemon=True)
        self.rig, self.sessions, self.error = rig, rig.sessions(), None

    def run(self) -> None:
        try:
            self.rig.pay(self.sessions)
        except Exception as error:  # noqa: BLE001 - reported by finish()
            self.error = error

    def finish(self) -> None:
        self.join(timeout=60)
        assert not self.is_alive() and self.error is None, self.error


def report(outcome: dict[str, int]) -> None:
    print(outcome)  # shown with -s, or on failure


def under_way(rig: PaymentRig, share: float = 0.3) -> None:
    """Wait until about ``share`` of the events have been delivered."""
    expected = PAYMENTS * 4 * share
    wait_for(lambda: len(rig.stripe.deliveries()) >= expected, 60, "deliveries", rig.log)


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(rig):
    # Slow answers from Stripe keep the worker busy long enough to be caught mid-batch.
    rig.stripe.fault(
        path_prefix="/v1/checkout/sessions", method="GET", latency_seconds=0.1, count=None
    )
    payer = Payer(rig)
    payer.start()
    wait_for(lambda: rig.completed() >= PAYMENTS // 5, 60, "the worker to be busy", rig.log)
    rig.kill_worker()
    assert rig.completed() < PAYMENTS, "the worker finished before it could be killed"
    rig.start_worker()
    payer.finish()
    rig.stripe.clear_faults()
    report(rig.check_every_event_once())
    assert rig.swept() > 0, "what the killed worker held was never queued again"


def test_a_web_worker_killed_while_webhooks_arrive_loses_and_doubles_nothing(rig):
    payer = Payer(rig)
    payer.start()
    under_way(rig, 0.1)
    # A delivery is answered in milliseconds, too fast to catch by chance on a loaded
    # machine: hold the database still so that the next one waits inside a web worker, kill
    # that worker with the delivery unanswered (Stripe then retries), and let go. The master
    # starts a new worker.
    rig.postgres.pause()
    try:
        answering = wait_for(
            rig.web_worker_answering, 30, "a web worker to take a delivery", rig.log
        )
        os.kill(answering, signal.SIGKILL)
    finally:
        rig.postgres.restore()
    payer.finish()
    wait_for(rig.deliveries_failed, 30, "the cut-short delivery to be recorded", rig.log)
    report(rig.check_every_event_once())


# Beat runs alone, as `make run`'s demo runs it, and under its lock in Redis, as production
# runs it (VCPAY_BEAT_LOCK): either way it sends again once Redis is back.
@pytest.mark.parametrize("how", ["cut", "pause"])
@pytest.mark.parametrize("rig", [False, True], ids=["alone", "locked"], indirect=True)
def test_redis_away_for_a_few_seconds_loses_and_doubles_nothing(rig, how):
    payer = Payer(rig)
    payer.start()
    under_way(rig)
    rig.redis.cut() if how == "cut" else rig.redis.pause()
    time.sleep(OUTAGE_SECONDS)
    rig.redis.restore()
    payer.finish()
    report(rig.check_every_event_once())


def test_postgresql_dropping_connections_mid_run_loses_and_doubles_nothing(rig):
    payer = Payer(rig)
    payer.start()
    under_way(rig)
    rig.postgres.cut()  # every connection closed, new ones refused
    time.sleep(OUTAGE_SECONDS / 2)
    rig.postgres.restore()
    before = rig.completed()
    wait_for(lambda: rig.completed() > before, 60, "payments to be applied again", rig.log)
    assert rig.postgres.sever() > 0  # and once more, without refusing: a restart
    payer.finish()
    report(rig.check_every_event_once())
