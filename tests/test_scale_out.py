"""Two of everything on loopback, sharing one PostgreSQL database and one Redis.

Web instances A and B (gunicorn), two Celery workers and two beats, each started with its
command from deploy/Procfile (``sandbox.procfile.procfile_command``), as ``make run-prod`` and
the compose file start them, with the Stripe and Jira stand-ins and the mail catcher in the
test process (tests/worker_rig.py). It proves that the instances share what they must and
never double what must happen once: a payment confirmed through A reaches a clinician
streaming from B; one signed event delivered to both at once is applied once; a Jira approval
is applied once with two beats started, of which only the one holding the lock sends work;
and beat, holding its lock in Redis, waits out a Redis outage rather than stopping, whether
the outage comes while it runs or as it starts.
"""

import re
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import func, select

from sandbox.procfile import procfile_command
from tests.faultproxy import FaultProxy
from tests.processes import free_port, product_environment, running, wait_for
from tests.services import forget_beat, redis_url
from tests.stripe_events import signed
from tests.stripe_standin import WEBHOOK_SECRET
from tests.test_enablement_jira import queued_request
from tests.worker_rig import CLINICIAN, Browser, WorkerRig
from vcpay.enablement.models import EnablementRequest, JiraPollCursor, RequestState
from vcpay.enablement.polling import CURSOR
from vcpay.enablement.raising import raise_in_service_desk
from vcpay.extensions import db
from vcpay.integrations.servicedesk import ServiceDesk
from vcpay.mail.models import OutboundEmail
from vcpay.payments.models import PaymentState
from vcpay.people.models import Clinic, Organisation
from vcpay.webhooks.models import EventState, StripeEvent

pytestmark = [pytest.mark.races, pytest.mark.worker, pytest.mark.timeout(240)]

PATIENT_EMAIL = "pat@example.org"
WORKERS = ("worker-a", "worker-b")
BEATS = ("beat-a", "beat-b")
SENT_BY_BEAT = b"Scheduler: Sending due task"


class ScaleOutRig(WorkerRig):
    """WorkerRig's scene and stand-ins, on PostgreSQL and Redis, with two of each process."""

    def __init__(self, folder):
        super().__init__("redis", folder)

    def _start_processes(self) -> None:
        self.web_b_url = f"http://127.0.0.1:{free_port()}"
        for name, url in (("web-a", self.web_url), ("web-b", self.web_b_url)):
            self._run(
                name, procfile_command("web"), PORT=str(urlsplit(url).port),
                VCPAY_WEB_HOST="127.0.0.1", VCPAY_WEB_WORKERS="1",
            )  # fmt: skip
        for name in WORKERS:
            # Two workers on one host need names of their own; the Redis database is the
            # suite's, perhaps with tasks left from a run before.
            extra = ("--concurrency", "1", "--hostname", f"{name}@%h", "--purge")
            self._run(name, procfile_command("worker", *extra))
        for name in BEATS:
            self._run(name, procfile_command("beat"), VCPAY_BEAT_LOCK="true")
        for url in (self.web_url, self.web_b_url):
            self.wait(lambda url=url: answers(f"{url}/healthz"), f"the web instance at {url}")
        for name in WORKERS:
            self.wait(lambda name=name: b" ready." in self.log(name), name)

    def requests_to(self, name: str, method: str, path: str) -> int:
        """Requests web instance ``name`` has answered so far, from its access log."""
        return len(re.findall(rf'"{method} {re.escape(path)}[ ?]'.encode(), self.log(name)))

    def ran(self, task: str) -> int:
        done = re.compile(rf"{re.escape(task)}\[[^\]]+\] succeeded".encode())
        return sum(len(done.findall(self.log(name))) for name in WORKERS)

    def sending_beats(self) -> list[str]:
        return [name for name in BEATS if SENT_BY_BEAT in self.log(name)]


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    with ScaleOutRig(tmp_path_factory.mktemp("scale-out")) as running:
        yield running


@pytest.fixture(scope="module")
def clinician_on_a(rig):
    return Browser(rig.web_url).sign_in(CLINICIAN)


@pytest.fixture(scope="module")
def clinician_on_b(rig, clinician_on_a):
    """The same browser (its sign-in, made on A) talking to instance B."""
    browser = Browser(rig.web_b_url)
    browser.session = clinician_on_a.session
    return browser


def deliver_at_once(urls: list[str], payload: str, header: str) -> list[int]:
    """POST the same signed body to each URL, all released together."""
    barrier = threading.Barrier(len(urls))
    statuses: list[int] = [0] * len(urls)

    def post(index: int, url: str) -> None:
        barrier.wait()
        answer = requests.post(
            f"{url}/webhooks/stripe", data=payload, timeout=30,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )  # fmt: skip
        statuses[index] = answer.status_code

    threads = [threading.Thread(target=post, args=pair) for pair in enumerate(urls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return statuses


def receipts_of(request_id: int) -> int:
    db.session.rollback()
    query = select(func.count()).select_from(OutboundEmail)
    return db.session.scalar(query.filter_by(dedupe_key=f"receipt:{request_id}"))


def test_a_payment_confirmed_through_a_reaches_a_clinician_streaming_from_b(
    rig, clinician_on_a, clinician_on_b
):
    call_id = clinician_on_a.start_call(rig.gp_id, "Pat Citizen, 09:00")
    stream_path = f"/calls/{call_id}/events"
    with clinician_on_b.stream(f"{stream_path}?after=0") as screen:
        rig.wait(lambda: screen.find("call_started"), "the stream from B to open")
        key = clinician_on_a.request_payment(call_id, "85.00", "Consultation")
        rig.stripe.pay(rig.payment_request(key).checkout_session_id)  # the patient pays
        [popup] = rig.wait(
            lambda: screen.find("payment_paid", request=key), "payment_paid on B's stream"
        )
    assert (popup["amount"], popup["description"]) == ("A$85.00", "Consultation")
    assert rig.payment_request(key).state == PaymentState.PAID
    # Stripe's webhooks went to A only; the stream was served by B only.
    assert rig.requests_to("web-a", "POST", "/webhooks/stripe") >= 1
    assert rig.requests_to("web-b", "POST", "/webhooks/stripe") == 0
    rig.wait(lambda: rig.requests_to("web-b", "GET", stream_path), "B's log of the stream")
    assert rig.requests_to("web-a", "GET", stream_path) == 0


def test_one_event_delivered_to_both_instances_at_once_is_applied_once(
    rig, clinician_on_a, clinician_on_b
):
    call_id = clinician_on_a.start_call(rig.gp_id, "Pat Citizen, 09:30")
    key = clinician_on_a.request_payment(call_id, "60.00", "Follow-up")
    request = rig.payment_request(key)
    session_id, request_id = request.checkout_session_id, request.id
    rig.stripe.webhook_fault("hold", count=50)  # the stand-in's own deliveries wait
    try:
        with clinician_on_b.stream(f"/calls/{call_id}/events?after=0") as screen:
            rig.wait(lambda: screen.find("call_started"), "the stream from B to open")
            rig.stripe.pay(session_id)
            [completed] = rig.wait(
                lambda: [
                    e for e in rig.stripe.events(type="checkout.session.completed")
                    if e["data"]["object"]["id"] == session_id
                ],
                "the stand-in's checkout.session.completed",
            )  # fmt: skip
            completed.pop("delivery_success")  # the stand-in's bookkeeping, not Stripe's
            payload, header = signed(completed, WEBHOOK_SECRET)
            urls = [rig.web_url, rig.web_b_url] * 2
            assert deliver_at_once(urls, payload, header) == [200] * 4
            rig.wait(lambda: screen.find("payment_paid", request=key), "payment_paid on B")
            rig.wait(lambda: receipts_of(request_id), "the receipt")
            rig.wait(
                lambda: rig.mail_to(PATIENT_EMAIL, "Your receipt", "60.00"), "the receipt sent"
            )
    finally:
        rig.stripe.clear_webhook_faults()
        rig.stripe.release_held("created")  # Stripe's own delivery comes late: no change
    rig.stripe.wait_for_webhooks(timeout=30)
    db.session.rollback()
    [stored] = db.session.scalars(select(StripeEvent).filter_by(event_id=completed["id"]))
    rig.wait(
        lambda: db.session.refresh(stored) or stored.state == EventState.PROCESSED,
        "the event processed",
    )
    assert rig.payment_request(key).state == PaymentState.PAID
    assert len(rig.call_events(key, "payment_paid")) == 1
    assert len(screen.find("payment_paid", request=key)) == 1
    assert receipts_of(request_id) == 1
    assert len(rig.mail_to(PATIENT_EMAIL, "Your receipt", "60.00")) == 1


def approved_in_jira(rig, clinic_name: str) -> tuple[int, int, str]:
    db.session.rollback()
    organisation = db.session.get(Organisation, rig.organisation_id)
    clinic = rig.new_clinic(clinic_name)
    request = queued_request(organisation, [clinic])
    raise_in_service_desk(request, ServiceDesk.from_config(rig.app.config))
    db.session.commit()
    rig.jira.decide(request.jira_key, "approve")
    return request.id, clinic.id, request.correlation_id


def test_a_jira_approval_is_applied_once_with_two_beats_started(rig):
    assert len(rig.sending_beats()) <= 1
    request_id, clinic_id, correlation = approved_in_jira(rig, "Harbourside Dental")

    def commented():
        db.session.rollback()
        request = db.session.get(EnablementRequest, request_id)
        return request.state == RequestState.APPROVED and request.comment_posted_at is not None

    rig.wait(commented, "the approval applied and commented on")
    assert db.session.get(Clinic, clinic_id).gateway_enabled
    done_at = db.session.get(EnablementRequest, request_id).comment_posted_at

    def polled_again():
        db.session.rollback()
        cursor = db.session.get(JiraPollCursor, CURSOR)
        return all(t is not None and t > done_at for t in (cursor.polled_at, cursor.swept_at))

    rig.wait(polled_again, "another poll and sweep")  # they change nothing
    rig.wait(lambda: rig.mail_to("manager@harbourside.example", "Payment Gateway approved"),
             "the manager's email")  # fmt: skip
    [raised] = [r for r in rig.jira.requests() if correlation in r["summary"]]
    assert len([c for c in raised["comments"] if correlation in c["body"]]) == 1
    approvals = [
        m for m in rig.catcher.store.messages() if "Payment Gateway approved" in m.subject
    ]  # fmt: skip
    recipients = [address for m in approvals for address in m.envelope_recipients]
    assert recipients and len(recipients) == len(set(recipients)), recipients
    # Of the two beats started, one holds the lock and sends; the other waits.
    assert len(rig.sending_beats()) == 1


def test_the_waiting_beat_takes_over_when_the_first_stops(rig):
    [sending] = rig.wait(rig.sending_beats, "a beat to send")
    [waiting] = [name for name in BEATS if name != sending]
    heartbeats = rig.ran("vcpay.health.record_heartbeat")
    rig.processes[sending].terminate()  # it lets go of the lock as it stops
    rig.processes[sending].wait(timeout=30)
    rig.wait(lambda: SENT_BY_BEAT in rig.log(waiting), "the waiting beat to take over")
    rig.wait(lambda: rig.ran("vcpay.health.record_heartbeat") > heartbeats, "a heartbeat")


OUTAGE_SECONDS = 8


def beat_environment(tmp_path, database: str, redis: str) -> dict[str, str]:
    """One beat under its lock, as production runs it, sending a heartbeat every second."""
    return product_environment(
        VCPAY_INSTANCE_PATH=str(tmp_path),
        VCPAY_DATABASE_URL=database,
        VCPAY_CELERY_BROKER_URL=redis,
        VCPAY_REDIS_URL=redis,
        VCPAY_BEAT_LOCK="true",
        VCPAY_HEARTBEAT_SECONDS="1",
    )


def test_beat_waits_out_a_redis_outage_and_sends_again(tmp_path):
    """Redis cut under a running beat (through a fault proxy; the shared server is never
    touched): beat keeps running, sends nothing meanwhile, and sends again once it is back."""
    server = urlsplit(redis_url())
    database = f"sqlite:///{tmp_path / 'vcpay.sqlite'}"
    proxy = FaultProxy(server.hostname or "127.0.0.1", server.port or 6379, "redis").start()
    try:
        env = beat_environment(tmp_path, database, f"redis://{proxy.address}{server.path}")
        log = tmp_path / "beat.log"
        with running(procfile_command("beat"), env, log) as beat:
            sent = lambda: log.read_bytes().count(SENT_BY_BEAT)  # noqa: E731
            wait_for(sent, 60, "beat to send", log)
            proxy.cut()
            wait_for(lambda: b"Redis is away" in log.read_bytes(), 30, "beat to notice", log)
            time.sleep(OUTAGE_SECONDS)
            proxy.restore()
            before = sent()
            wait_for(lambda: sent() > before, 60, "beat to send again", log)
            assert beat.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        proxy.close()
        forget_beat(redis_url(), database)


def test_a_beat_started_while_redis_is_away_sends_once_it_is_back(tmp_path):
    """Beat (re)started by its supervisor while Redis is down: it stores its schedule and
    takes its lock on the first tick that reaches Redis, instead of dying as it starts or
    running on without the lock."""
    server = urlsplit(redis_url())
    database = f"sqlite:///{tmp_path / 'vcpay.sqlite'}"
    proxy = FaultProxy(server.hostname or "127.0.0.1", server.port or 6379, "redis").start()
    try:
        env = beat_environment(tmp_path, database, f"redis://{proxy.address}{server.path}")
        log = tmp_path / "beat.log"
        proxy.cut()
        with running(procfile_command("beat"), env, log) as beat:
            wait_for(lambda: b"Redis is away" in log.read_bytes(), 60, "beat to notice", log)
            time.sleep(OUTAGE_SECONDS / 2)  # a few ticks without Redis
            assert beat.poll() is None, log.read_text(errors="replace")[-3000:]
            proxy.restore()
            wait_for(lambda: SENT_BY_BEAT in log.read_bytes(), 60, "beat to send", log)
            assert b"beat: Acquired lock" in log.read_bytes()
            assert beat.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        proxy.close()
        forget_beat(redis_url(), database)


def test_a_beat_whose_redis_lost_its_keys_takes_the_lock_and_sends_again(tmp_path):
    """Redis restarted without its data (or flushed) under a running beat: the lock and the
    schedule are gone. Beat takes the lock again and stores its schedule again; without the
    schedule nothing would ever be due."""
    database = f"sqlite:///{tmp_path / 'vcpay.sqlite'}"
    env = beat_environment(tmp_path, database, redis_url())
    log = tmp_path / "beat.log"
    try:
        with running(procfile_command("beat"), env, log) as beat:
            sent = lambda: log.read_bytes().count(SENT_BY_BEAT)  # noqa: E731
            wait_for(sent, 60, "beat to send", log)
            forget_beat(redis_url(), database)  # every key beat kept, its lock among them
            wait_for(lambda: b"The lock lapsed" in log.read_bytes(), 30, "beat to notice", log)
            before = sent()
            wait_for(lambda: sent() > before, 30, "beat to send again", log)
            assert beat.poll() is None, log.read_text(errors="replace")[-3000:]
    finally:
        forget_beat(redis_url(), database)
