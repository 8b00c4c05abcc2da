"""What an operator sees of real processes: gunicorn, a Celery worker and beat with
``VCPAY_LOG_FORMAT=json`` and ``PROMETHEUS_MULTIPROC_DIR``, as production runs them.

A clinician asks for a payment, the patient pays at the Stripe stand-in, its webhook reaches
gunicorn and the worker applies it. Then every JSON line parses, carries the ids that apply
and nothing personal, and one scrape of /metrics shows the web's and the worker's counts and
the database's gauges. /readyz turns 503 when PostgreSQL is cut behind a fault proxy.
"""

import json
import secrets
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.faultproxy import FaultProxy
from tests.processes import free_port, port_open, product_environment, running, wait_for
from tests.test_access_log import TOKEN as GUEST_TOKEN
from tests.test_access_log import demo_web_command
from tests.worker_rig import CLINICIAN, Browser, WorkerRig
from vcpay.payments.models import PaymentState
from vcpay.people.demo import DEMO_PASSWORD

pytestmark = [pytest.mark.worker, pytest.mark.timeout(240)]

METRICS_TOKEN = secrets.token_urlsafe(32)
ACCESS_LOG = ["--access-logfile", "-", "--logger-class", "vcpay.access_log.MaskedAccessLogger"]
PATIENT_EMAIL = "pat@example.org"  # what the Stripe stand-in's Checkout pays as


class ObservedRig(WorkerRig):
    """The rig's processes, with production's log format and metrics settings."""

    def _environment(self) -> dict[str, str]:
        metrics = self.folder / "metrics"
        metrics.mkdir(exist_ok=True)
        return {
            **super()._environment(),
            "VCPAY_LOG_FORMAT": "json",
            "VCPAY_METRICS_TOKEN": METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        }

    def _run(self, name: str, command: list[str]) -> None:
        """The web server with the demo's (and production's) access log and logger class."""
        if name == "web":
            command = [*command, *ACCESS_LOG]
        super()._run(name, command)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    with ObservedRig("redis", tmp_path_factory.mktemp("observed")) as running_rig:
        yield running_rig


@pytest.fixture(scope="module")
def paid(rig):
    """A payment request the patient paid, applied by the worker: (call id, request key)."""
    clinician = Browser(rig.web_url).sign_in(CLINICIAN)
    call_id = clinician.start_call(rig.gp_id, "Pat Citizen, 10:30")
    key = clinician.request_payment(call_id, "85.00", "Consultation")
    rig.stripe.pay(rig.payment_request(key).checkout_session_id)
    rig.wait(lambda: rig.payment_request(key).state == PaymentState.PAID, "the payment")
    rig.wait(lambda: rig.ran("vcpay.webhooks.process_stripe_events") >= 1, "the worker's log")
    return call_id, key


def json_lines(text: bytes) -> list[dict]:
    """Every log line of a process; Celery's start-up banner (printed, not logged) aside."""
    records = []
    for line in text.decode().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))  # a line that does not parse fails the test
    return records


def personal_data(rig, key: str) -> list[str]:
    request = rig.payment_request(key)
    return [
        CLINICIAN,
        PATIENT_EMAIL,
        DEMO_PASSWORD,
        "Pat Citizen",
        request.checkout_session_id,  # Checkout's session id: the key to the patient's page
        rig.app.config["SECRET_KEY"],
        METRICS_TOKEN,
    ]


def test_every_process_logs_json_lines_with_ids_and_nothing_personal(rig, paid):
    call_id, key = paid
    logs = {name: rig.log(name) for name in ("web", "worker", "beat")}
    for name, text in logs.items():
        records = json_lines(text)
        assert records, f"no JSON lines from {name}"
        assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
        for secret in personal_data(rig, key):
            assert secret.encode() not in text, f"{name}'s log shows {secret!r}"
    # gunicorn's every line is JSON (Celery prints a banner, not logged, before its lines).
    stray = [line for line in logs["web"].decode().splitlines() if not line.startswith("{")]
    assert stray == [], stray

    def applied() -> list[dict]:
        """The worker's records of applying the payment's webhook (its line comes just after
        the payment is committed)."""
        return [
            r
            for r in json_lines(rig.log("worker"))
            if "process_stripe_event" in r["message"] and r.get("payment_request_key") == key
        ]

    [record, *_] = rig.wait(applied, "the worker's record of applying the webhook")
    assert "succeeded" in record["message"]
    assert record["call_id"] == str(call_id)
    assert record["stripe_event_id"].startswith("evt_")

    # A web request hands its request id to the tasks it queues (an email, here): the same id
    # is on the web server's line for the request and on the worker's for the task. (Stripe
    # events are handed over in batches, several requests' at once: they carry their own id.)
    def handed_on() -> bool:
        web_ids = {r["request_id"] for r in json_lines(rig.log("web")) if "request_id" in r}
        traced = [r for r in json_lines(rig.log("worker")) if r["logger"] == "celery.app.trace"]
        return any(r.get("request_id") in web_ids for r in traced)

    rig.wait(handed_on, "a task's record with the request id of the web request that queued it")


def test_a_request_id_is_echoed_by_the_real_server(rig):
    answer = requests.get(
        f"{rig.web_url}/healthz", headers={"X-Request-ID": "lb-4f1c-0000-0001"}, timeout=5
    )
    assert answer.headers["X-Request-ID"] == "lb-4f1c-0000-0001"


def _scrape(rig, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{rig.web_url}/metrics", headers=headers, timeout=10)


def test_one_scrape_shows_the_web_the_worker_and_the_database(rig, paid):
    rig.wait(lambda: rig.ran("vcpay.health.record_heartbeat") >= 1, "a heartbeat")
    assert _scrape(rig, None).status_code == 401
    assert _scrape(rig, "not-" + METRICS_TOKEN).status_code == 401
    scraped = _scrape(rig, METRICS_TOKEN)
    assert scraped.status_code == 200
    samples: dict[tuple, float] = {}
    for family in text_string_to_metric_families(scraped.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert samples[("vcpay_database_up", ())] == 1
    assert samples[("vcpay_webhook_events_received_total", ())] >= 1
    assert samples[("vcpay_webhook_events_failed", ())] == 0
    assert samples[("vcpay_payment_requests", (("state", "paid"),))] == 1
    lag = samples[("vcpay_webhook_processing_lag_seconds", (("stat", "max"),))]
    assert 0 < lag < 60
    # Counted in the worker's process, read by the web's: the multiprocess folder.
    processed = samples[
        (
            "vcpay_tasks_total",
            (("state", "SUCCESS"), ("task", "vcpay.webhooks.process_stripe_events")),
        )
    ]
    assert processed >= 1
    assert (
        samples[
            ("vcpay_tasks_total", (("state", "SUCCESS"), ("task", "vcpay.health.record_heartbeat")))
        ]
        >= 1
    )
    pay_page = [
        value
        for (name, labels), value in samples.items()
        if name == "vcpay_request_duration_seconds_count"
        and dict(labels)["route"] == "/calls/<int:call_id>/payment-requests"
    ]
    assert sum(pay_page) >= 1
    assert not any(
        "/calls/" in dict(labels).get("route", "")
        and any(c.isdigit() for c in dict(labels)["route"])
        for (name, labels) in samples
    )


def test_ready_with_beat_running_and_not_ready_without_postgresql(rig, paid, tmp_path):
    rig.wait(
        lambda: requests.get(f"{rig.web_url}/readyz", timeout=5).status_code == 200,
        "ready, once beat's heartbeat and a poll are recorded",
    )
    # A second web server whose only way to PostgreSQL is a fault proxy, then cut.
    target = urlsplit(rig.database_url)
    proxy = FaultProxy(target.hostname, target.port or 5432, "postgresql").start()
    try:
        through = rig.database_url.replace(target.netloc.split("@")[-1], proxy.address)
        port = free_port()
        command = demo_web_command(tmp_path, port)
        env = product_environment(
            VCPAY_INSTANCE_PATH=str(tmp_path),
            VCPAY_DATABASE_URL=through,
            VCPAY_CELERY_BROKER_URL=rig.broker_url,
            VCPAY_REDIS_URL=rig.live_redis_url,
            VCPAY_LOG_FORMAT="json",
        )
        log = tmp_path / "web.log"
        with running(command, env, log):
            wait_for(lambda: port_open(port), 60, "the second web server", log)
            base = f"http://127.0.0.1:{port}"
            wait_for(
                lambda: requests.get(f"{base}/readyz", timeout=10).status_code == 200,
                60,
                "the second web server ready",
                log,
            )
            requests.get(f"{base}/join/{GUEST_TOKEN}", timeout=10)
            proxy.cut()
            ready = requests.get(f"{base}/readyz", timeout=30)
            assert ready.status_code == 503
            assert ready.json()["database"] == "unreachable"
            assert requests.get(f"{base}/healthz", timeout=30).status_code == 200  # alive
            proxy.restore()
            wait_for(
                lambda: requests.get(f"{base}/readyz", timeout=10).status_code == 200,
                60,
                "ready again once PostgreSQL is back",
                log,
            )
        records = json_lines(log.read_bytes())  # gunicorn's own lines and its access log
        access = [r for r in records if r["logger"] == "gunicorn.access"]
        [guest] = [r for r in access if r["path"].startswith("/join/")]
        assert (guest["path"], guest["status"], guest["method"]) == ("/join/[hidden]", 404, "GET")
        assert guest["request_id"]
        assert any(r["logger"] == "gunicorn.error" for r in records)
        assert GUEST_TOKEN not in log.read_text()
    finally:
        proxy.close()
