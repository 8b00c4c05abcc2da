"""The whole payment pipeline on real processes, with PostgreSQL and Redis behind fault proxies.

``PaymentRig`` makes payment requests whose Checkout Sessions exist at an in-process Stripe
stand-in, then runs vcpay as production does (gunicorn, a Celery worker, beat) on a scratch
PostgreSQL database and the shared Redis, both reached only through ``FaultProxy``. The
stand-in pays the sessions and delivers the events (with duplicates) to the real webhook
endpoint, retrying what is not answered 2xx as Stripe does. A test breaks something while
that runs, and ``check_every_event_once`` proves afterwards that nothing was lost or doubled.
"""

import os
import re
import secrets
import signal
import subprocess
import sys
from collections import Counter
from contextlib import ExitStack, suppress
from pathlib import Path
from urllib.parse import urlsplit

import requests
from sqlalchemy import func, select

from sandbox.mail import start_mail_catcher
from sandbox.stripe.control_client import StripeControl
from sandbox.stripe.server import start_stripe_standin, stop_stripe_standin
from tests.faultproxy import FaultProxy
from tests.processes import celery, free_port, product_environment, stop_group, wait_for
from tests.services import forget_beat, redis_url, scratch_postgres_database
from tests.stripe_standin import WEBHOOK_SECRET, link_clinic
from vcpay import create_app
from vcpay.calls.models import CallEvent
from vcpay.calls.services import start_call
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi, forget_clients
from vcpay.mail.models import OutboundEmail
from vcpay.payments import requesting
from vcpay.payments.models import PaymentRequest, PaymentState
from vcpay.people.demo import seed_demo
from vcpay.people.services import find_user_by_email
from vcpay.webhooks.models import EventState, StripeEvent

ROOT = Path(__file__).resolve().parent.parent
CLINICIAN = "clinician@harbourside.example"
CALLS = 6
# Stripe retries for days; the stand-in's schedule is squeezed to ride out a few seconds'
# outage within a test.
WEBHOOK_RETRY_SECONDS = (0.5, 1, 2, 3, 5, 8, 8)
SWEEP_SECONDS = 2
SETTLE_SECONDS = 60
SENT_BY_BEAT = b"Scheduler: Sending due task"
SWEEP_DONE = re.compile(rb"sweep_stripe_events\[[^\]]+\] succeeded in [\d.]+s: (\d+)")


def established_inodes(port: int) -> set[str]:
    """Socket inodes of the connections accepted on a local port (from /proc/net/tcp)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    inodes.add(fields[9])
    return inodes


class PaymentRig:
    def __init__(self, folder: Path, payments_count: int, beat_lock: bool = False):
        self.folder = folder
        self.payments_count = payments_count
        self.beat_lock = beat_lock  # beat as production runs it: under its lock in Redis
        self.stack = ExitStack()
        self.processes: dict[str, subprocess.Popen] = {}
        self.log = folder / "processes.log"
        self.known_events: set[str] = set()

    # -- start and stop ----------------------------------------------------------------------

    def __enter__(self) -> "PaymentRig":
        try:
            self._start()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        for process in self.processes.values():
            stop_group(process)
        self.stack.close()

    def _start(self) -> None:
        broker = urlsplit(redis_url())
        self.direct_database_url = self.stack.enter_context(scratch_postgres_database())
        database = urlsplit(self.direct_database_url)
        self.postgres = self._proxy(database.hostname, database.port or 5432, "postgres")
        self.redis = self._proxy(broker.hostname, broker.port or 6379, "redis")
        self.database_url = self.direct_database_url.replace(
            database.netloc.split("@")[-1], self.postgres.address
        )
        self.broker_url = f"redis://{self.redis.address}{broker.path}"
        # Beat under its lock keeps its schedule in Redis, which outlives the scratch database.
        self.stack.callback(forget_beat, redis_url(), self.database_url)
        standin_url, standin = start_stripe_standin(
            {"webhook_retry_seconds": WEBHOOK_RETRY_SECONDS, "webhook_timeout_seconds": 5.0}
        )
        self.stack.callback(stop_stripe_standin, standin)
        self.stripe = StripeControl(standin_url)
        self.catcher = self.stack.enter_context(start_mail_catcher(self.folder / "mail"))
        self.web_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.app = self._app()
        self.requests = self._payment_requests()
        self.env = self._environment()
        beat_sent = self.start_beat()  # it starts while the others do
        self.start_web()
        self.start_worker()
        self.wait_for_beat(beat_sent)
        self.stripe.send_webhooks_to(f"{self.web_url}/webhooks/stripe", WEBHOOK_SECRET)

    def _proxy(self, host: str | None, port: int, name: str) -> FaultProxy:
        proxy = FaultProxy(host or "127.0.0.1", port, name).start()
        self.stack.callback(proxy.close)
        return proxy

    def _app(self):
        """The test's own view of the database, straight to the server (never through the
        proxies): it sets the scene and checks the outcome."""
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": self.direct_database_url,
                "CELERY_BROKER_URL": "memory://",
                "REDIS_URL": "",
                "RATELIMIT_STORAGE_URI": "memory://",
                "STRIPE_API_BASE": self.stripe.base,
                "STRIPE_MAX_NETWORK_RETRIES": 0,
                "PUBLIC_URL": self.web_url,
            }
        )
        context = app.app_context()
        context.push()
        self.stack.callback(context.pop)
        self.stack.callback(lambda: db.engine.dispose())
        self.stack.callback(lambda: app.extensions["call_waker"].stop())
        self.stack.callback(db.session.remove)
        self.stack.callback(forget_clients)
        forget_clients()
        db.create_all()
        return app

    def _payment_requests(self) -> list[str]:
        """Payment requests made as a clinician makes them: a Checkout Session each, on the
        GP clinic's own account at the stand-in. Their request keys."""
        organisation = seed_demo(enable_gateway=True)
        clinic = next(c for c in organisation.clinics if c.name == "Harbourside GP Clinic")
        self.account = link_clinic(self.stripe, clinic).account_id
        db.session.commit()
        clinician = find_user_by_email(CLINICIAN)
        calls = [start_call(clinic, clinician, f"Patient {n}") for n in range(CALLS)]
        db.session.commit()
        stripe_api = StripeApi.for_app()
        keys = []
        for number in range(self.payments_count):
            key = secrets.token_urlsafe(18)
            call = calls[number % CALLS]
            asked = requesting.PaymentAsked(
                f"{50 + number}.00", f"Consultation {number}", key, requesting.ANYONE
            )
            requesting.request_payment(call, clinician, asked, stripe_api)
            db.session.commit()
            keys.append(key)
        self.known_events = {event["id"] for event in self.stripe.call("GET", "events")}
        return keys

    def _environment(self) -> dict[str, str]:
        return product_environment(
            VCPAY_INSTANCE_PATH=str(self.folder),
            VCPAY_SECRET_KEY=secrets.token_urlsafe(32),
            VCPAY_DATABASE_URL=self.database_url,
            VCPAY_CELERY_BROKER_URL=self.broker_url,
            VCPAY_REDIS_URL=self.broker_url,
            VCPAY_PUBLIC_URL=self.web_url,
            VCPAY_STRIPE_API_BASE=self.stripe.base,
            VCPAY_SMTP_HOST=self.catcher.host,
            VCPAY_SMTP_PORT=str(self.catcher.smtp_port),
            VCPAY_STRIPE_EVENT_SWEEP_SECONDS=str(SWEEP_SECONDS),
            # Only webhooks may pay a request here: the reconciler and Jira stay out of it.
            VCPAY_RECONCILE_SECONDS="3600",
            VCPAY_JIRA_URL="http://127.0.0.1:9",
            VCPAY_JIRA_POLL_SECONDS="3600",
            VCPAY_JIRA_SWEEP_SECONDS="3600",
            VCPAY_BEAT_LOCK=str(self.beat_lock).lower(),
        )

    def _run(self, name: str, command: list[str]) -> subprocess.Popen:
        with self.log.open("ab") as output:
            process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.processes[name] = process
        return process

    def start_web(self) -> None:
        """gunicorn as ``make run`` starts it (gthread, two workers)."""
        address = urlsplit(self.web_url).netloc
        self._run(
            "web",
            [
                sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", address,
                "--worker-class", "gthread", "--workers", "2", "--threads", "8",
                "--graceful-timeout", "5",
            ],
        )  # fmt: skip
        wait_for(lambda: self._answers("/healthz"), 60, "the web server", self.log)

    def start_worker(self) -> None:
        started = self.log.read_bytes().count(b" ready.")
        self._run("worker", celery("worker", "--loglevel", "INFO", "--concurrency", "2"))
        wait_for(
            lambda: self.log.read_bytes().count(b" ready.") > started, 60, "a worker", self.log
        )

    def start_beat(self) -> int:
        """Beat; returns how many tasks beat had sent before, for ``wait_for_beat``."""
        sent = self.log.read_bytes().count(SENT_BY_BEAT) if self.log.exists() else 0
        schedule = str(self.folder / "celerybeat-schedule")
        self._run("beat", celery("beat", "--loglevel", "INFO", "--schedule", schedule))
        return sent

    def wait_for_beat(self, sent_before: int) -> None:
        """Beat up and sending before the test breaks anything: a fault then hits it mid-run,
        not while it is still starting."""
        wait_for(
            lambda: self.log.read_bytes().count(SENT_BY_BEAT) > sent_before, 60, "beat", self.log
        )

    def _answers(self, path: str) -> bool:
        with suppress(requests.RequestException):
            return requests.get(self.web_url + path, timeout=2).status_code == 200
        return False

    # -- what breaks -------------------------------------------------------------------------

    def kill_worker(self) -> None:
        """SIGKILL the Celery worker and its pool: no goodbye, no acknowledgements."""
        worker = self.processes.pop("worker")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)

    def web_workers(self) -> list[int]:
        master = self.processes["web"].pid
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with suppress(OSError, IndexError, ValueError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                    children.append(int(stat.parent.name))
        return children

    def web_worker_answering(self) -> int | None:
        """The gunicorn worker holding a connection from a client right now, if any."""
        sockets = {f"socket:[{inode}]" for inode in established_inodes(self.web_port)}
        for pid in self.web_workers():
            with suppress(OSError):
                for descriptor in Path(f"/proc/{pid}/fd").iterdir():
                    with suppress(OSError):
                        if os.readlink(descriptor) in sockets:
                            return pid
        return None

    # -- the payments ------------------------------------------------------------------------

    def sessions(self) -> list[str]:
        """The Checkout Session of each request, in the order they were made."""
        db.session.rollback()
        by_key = dict(
            db.session.execute(
                select(PaymentRequest.request_key, PaymentRequest.checkout_session_id)
            ).all()
        )
        return [by_key[key] for key in self.requests]

    def pay(self, sessions: list[str], duplicate_every: int = 2) -> None:
        """Each patient pays on Checkout; the events of every ``duplicate_every``-th payment
        are delivered twice. Uses no database: it may run on a thread of its own."""
        for number, session in enumerate(sessions):
            if number % duplicate_every == 0:
                self.stripe.webhook_fault("duplicate", count=4)
            self.stripe.pay(session)

    def completed(self) -> int:
        """Checkout completions applied so far."""
        db.session.rollback()
        return db.session.scalar(
            select(func.count())
            .select_from(StripeEvent)
            .where(
                StripeEvent.type == "checkout.session.completed",
                StripeEvent.state == EventState.PROCESSED.value,
            )
        )

    def deliveries_failed(self) -> int:
        return sum(
            1
            for attempt in self.stripe.deliveries()
            if attempt["status_code"] is None or attempt["status_code"] >= 300
        )

    def swept(self) -> int:
        """Events the sweeper has queued again so far (from the worker's log)."""
        return sum(int(n) for n in SWEEP_DONE.findall(self.log.read_bytes()))

    def receipts_emailed(self) -> Counter:
        """Receipts the mail server took, by what they were for."""
        return Counter(
            line
            for message in self.catcher.store.messages()
            for line in (message.text or "").splitlines()
            if line.startswith("For: ")
        )

    def new_events(self) -> set[str]:
        return {e["id"] for e in self.stripe.call("GET", "events")} - self.known_events

    def _settled(self) -> bool:
        db.session.rollback()
        stored = set(db.session.scalars(select(StripeEvent.event_id)))
        waiting = db.session.scalar(
            select(func.count())
            .select_from(StripeEvent)
            .where(StripeEvent.state == EventState.RECEIVED.value)
        )
        return self.new_events() <= stored and waiting == 0

    def redeliver_some(self, count: int) -> None:
        """Late copies of completions already applied, as Stripe may send days later."""
        completions = [
            e["id"]
            for e in self.stripe.call("GET", "events")
            if e["type"] == "checkout.session.completed" and e["id"] not in self.known_events
        ]
        for event_id in completions[:count]:
            self.stripe.call("POST", f"events/{event_id}/redeliver")
        self.stripe.wait_for_webhooks(timeout=20)

    # -- the proof -----------------------------------------------------------------------------

    def check_every_event_once(self) -> dict[str, int]:
        """Wait for the pipeline to settle, then prove: every event Stripe sent is stored once
        and processed once; every request is paid, with one popup and one receipt."""
        wait_for(self._settled, SETTLE_SECONDS, "every event to be stored and processed", self.log)
        self.redeliver_some(10)
        wait_for(self._settled, SETTLE_SECONDS, "the late copies to be handled", self.log)
        db.session.rollback()
        events = list(db.session.scalars(select(StripeEvent)))
        sent = self.new_events()
        stored = Counter(e.event_id for e in events)
        assert sent <= set(stored), f"lost events: {sorted(sent - set(stored))[:5]}"
        states = Counter(e.state for e in events)
        assert set(states) <= {EventState.PROCESSED, EventState.IGNORED}, states
        by_key = {
            r.request_key: r
            for r in db.session.scalars(
                select(PaymentRequest).where(PaymentRequest.request_key.in_(self.requests))
            )
        }
        unpaid = [k for k, r in by_key.items() if r.state != PaymentState.PAID]
        assert not unpaid, f"{len(unpaid)} of {len(by_key)} requests not paid"
        popups = Counter(
            e.data["request"]
            for e in db.session.scalars(select(CallEvent).filter_by(kind="payment_paid"))
        )
        assert popups == Counter(self.requests), "a payment popped up twice, or never"
        receipts = Counter(
            e.dedupe_key for e in db.session.scalars(select(OutboundEmail))
        )  # fmt: skip
        assert receipts == Counter(f"receipt:{r.id}" for r in by_key.values())
        completions = [e for e in events if e.type == "checkout.session.completed"]
        assert len(completions) == len(self.requests)
        emailed = self.receipts_emailed()
        assert max(emailed.values(), default=0) <= 1, "a receipt was emailed twice"
        return {
            "events": len(events),
            "deliveries": len(self.stripe.deliveries()),
            "failed_deliveries": self.deliveries_failed(),
            "swept": self.swept(),
            "receipts_emailed": sum(emailed.values()),
        }
