"""vcpay on its own processes, for tests where the point is that a worker does the work.

``WorkerRig`` runs gunicorn, a Celery worker and beat with the command lines ``make run``
uses, in one of two shapes: ``embedded`` (SQLite, kombu's file-system broker, call streams
woken by each web process polling, as ``make run``) and ``redis`` (a scratch PostgreSQL
database, the Redis broker, and ``VCPAY_REDIS_URL`` so call streams are woken through Redis
pub/sub, as in production). The Stripe and Jira stand-ins and the mail catcher run in the
test process. Beat's periodic work comes every second or two, so the sweeps and the
reconciler act within a test's patience.

The test's own application (``rig.app``) shares the database, to set scenes and check
outcomes. Its broker is ``memory://``: a task it queues never reaches a worker, as when a
web process dies before handing its message over; only the sweeps can recover such work.

``Browser`` is a signed-in person over HTTP, and ``EventStream`` a call screen's live
stream, read on a thread of its own and reopened with ``Last-Event-ID`` as a browser does.
"""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
from contextlib import ExitStack, suppress
from pathlib import Path

import requests
import stripe
from sqlalchemy import select

from sandbox.jira.control_client import JiraControl
from sandbox.jira.server import start_jira_standin, stop_jira_standin
from sandbox.mail import start_mail_catcher
from sandbox.stripe.control_client import StripeControl
from sandbox.stripe.server import start_stripe_standin, stop_stripe_standin
from tests.processes import celery, free_port, product_environment, stop_group, wait_for
from tests.services import forget_beat, redis_url, scratch_postgres_database
from tests.stripe_standin import WEBHOOK_SECRET, link_clinic
from vcpay import create_app
from vcpay.calls.models import CallEvent
from vcpay.extensions import db
from vcpay.integrations import servicedesk
from vcpay.integrations.stripe_api import forget_clients
from vcpay.payments.models import PaymentRequest
from vcpay.people.demo import DEMO_PASSWORD, seed_demo
from vcpay.people.models import Clinic, Organisation

ROOT = Path(__file__).resolve().parent.parent
SHAPES = ("embedded", "redis")
CLINICIAN = "clinician@harbourside.example"
GP_CLINIC = "Harbourside GP Clinic"
# Generous: two shared cores may be busy with anything. A wait ends as soon as its
# condition holds, so this costs nothing when all is well.
PATIENCE_SECONDS = 60
WEB_THREADS = 16
# Stripe retries for days; squeezed here so a refused delivery comes again within a test.
WEBHOOK_RETRY_SECONDS = (0.5, 1, 2, 4, 8)
INTERVALS = {
    "VCPAY_JIRA_POLL_SECONDS": "1",
    "VCPAY_JIRA_SWEEP_SECONDS": "2",
    "VCPAY_STRIPE_EVENT_SWEEP_SECONDS": "1",
    "VCPAY_RECONCILE_SECONDS": "1",
    "VCPAY_HEARTBEAT_SECONDS": "5",
}
SWEEP_DONE = re.compile(rb"sweep_stripe_events\[[^\]]+\] succeeded in [\d.]+s: (\d+)")
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
REQUEST_KEY_FIELD = re.compile(r'name="request_key" type="hidden" value="([^"]+)"')


class WorkerRig:
    def __init__(self, shape: str, folder: Path):
        assert shape in SHAPES, shape
        self.shape = shape
        self.folder = folder
        self.stack = ExitStack()
        self.processes: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> "WorkerRig":
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        for process in self.processes.values():  # all at once: each takes a moment
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            stop_group(process)
        self.processes.clear()
        self.stack.close()

    def _start(self) -> None:
        self.database_url, self.broker_url, self.live_redis_url = self._servers()
        stripe_url, stripe_server = start_stripe_standin(
            {"webhook_retry_seconds": WEBHOOK_RETRY_SECONDS, "webhook_timeout_seconds": 5.0}
        )
        self.stack.callback(stop_stripe_standin, stripe_server)
        self.stripe = StripeControl(stripe_url)
        jira_url, jira_server = start_jira_standin()
        self.stack.callback(stop_jira_standin, jira_server)
        self.jira = JiraControl(jira_url)
        self.catcher = self.stack.enter_context(start_mail_catcher(self.folder / "mail"))
        self.web_url = f"http://127.0.0.1:{free_port()}"
        self.app = self._app()
        self._scene()
        self.env = self._environment()
        self._start_processes()
        self.stripe.send_webhooks_to(f"{self.web_url}/webhooks/stripe", WEBHOOK_SECRET)

    def _servers(self) -> tuple[str, str, str]:
        """The database, the broker, and the Redis that wakes call streams (none embedded)."""
        if self.shape == "embedded":
            return f"sqlite:///{self.folder / 'vcpay.sqlite'}", "filesystem://", ""
        broker = redis_url()
        database = self.stack.enter_context(scratch_postgres_database())
        self.stack.callback(forget_beat, broker, database)  # after the processes stop
        return database, broker, broker

    def _app(self):
        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": self.database_url,
                "CELERY_BROKER_URL": "memory://",
                "REDIS_URL": "",
                "RATELIMIT_STORAGE_URI": "memory://",
                "STRIPE_API_BASE": self.stripe.base,
                "STRIPE_MAX_NETWORK_RETRIES": 0,
                "JIRA_URL": self.jira.base,
                "JIRA_TIMEOUT_SECONDS": 5.0,
                "PUBLIC_URL": self.web_url,
            }
        )
        context = app.app_context()
        context.push()
        self.stack.callback(context.pop)
        self.stack.callback(lambda: db.engine.dispose())
        self.stack.callback(self._dispose_inbox_engine, app)
        self.stack.callback(lambda: app.extensions["call_waker"].stop())
        self.stack.callback(db.session.remove)
        self.stack.callback(servicedesk.forget_clients)
        self.stack.callback(forget_clients)
        forget_clients()
        servicedesk.forget_clients()
        db.create_all()
        return app

    @staticmethod
    def _dispose_inbox_engine(app) -> None:
        if (inbox := app.extensions.get("stripe_inbox_engine")) is not None:
            inbox.dispose()

    def _scene(self) -> None:
        """The demo organisation, with the GP clinic's own account linked at the stand-in."""
        organisation = seed_demo(enable_gateway=True)
        gp = next(c for c in organisation.clinics if c.name == GP_CLINIC)
        link_clinic(self.stripe, gp)
        db.session.commit()
        self.organisation_id, self.gp_id = organisation.id, gp.id

    def _environment(self) -> dict[str, str]:
        return product_environment(
            VCPAY_INSTANCE_PATH=str(self.folder),
            VCPAY_SECRET_KEY=secrets.token_urlsafe(32),
            VCPAY_DATABASE_URL=self.database_url,
            VCPAY_CELERY_BROKER_URL=self.broker_url,
            VCPAY_REDIS_URL=self.live_redis_url,
            VCPAY_PUBLIC_URL=self.web_url,
            VCPAY_STRIPE_API_BASE=self.stripe.base,
            VCPAY_JIRA_URL=self.jira.base,
            VCPAY_JIRA_TIMEOUT_SECONDS="5",
            VCPAY_SMTP_HOST=self.catcher.host,
            VCPAY_SMTP_PORT=str(self.catcher.smtp_port),
            VCPAY_WEB_THREADS=str(WEB_THREADS),
            VCPAY_STREAM_RESERVED_THREADS="4",
            **INTERVALS,
        )

    def _start_processes(self) -> None:
        """As ``sandbox.demo.demo_processes`` builds them, with one web process and one worker
        process: what is proved here is that the work crosses processes, not its capacity."""
        address = self.web_url.removeprefix("http://")
        self._run("web", [
            sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", address,
            "--worker-class", "gthread", "--workers", "1", "--threads", str(WEB_THREADS),
            "--graceful-timeout", "5",
        ])  # fmt: skip
        worker = ["worker", "--loglevel", "INFO", "--concurrency", "1"]
        if self.shape == "embedded":
            worker += ["--without-mingle", "--without-gossip"]
        else:
            worker += ["--purge"]  # the Redis database is this suite's, left from a run before
        self._run("worker", celery(*worker))
        schedule = str(self.folder / "celerybeat-schedule")
        self._run("beat", celery("beat", "--loglevel", "INFO", "--schedule", schedule))
        self.wait(self._web_answers, "the web server")
        self.wait(lambda: b" ready." in self.log("worker"), "the worker")

    def _run(self, name: str, command: list[str], **settings: str) -> None:
        """Start ``command`` as process ``name`` (its log: ``name``.log), with the rig's
        environment and any ``settings`` of its own."""
        with (self.folder / f"{name}.log").open("ab") as output:
            self.processes[name] = subprocess.Popen(
                command, cwd=ROOT, env={**self.env, **settings}, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def _web_answers(self) -> bool:
        with suppress(requests.RequestException):
            return requests.get(f"{self.web_url}/healthz", timeout=2).status_code == 200
        return False

    def log(self, name: str) -> bytes:
        path = self.folder / f"{name}.log"
        return path.read_bytes() if path.exists() else b""

    def wait(self, condition, what: str):
        """Wait for ``condition`` to hold; on a timeout, show the end of every log."""
        try:
            return wait_for(condition, PATIENCE_SECONDS, what)
        except AssertionError as timed_out:
            tails = "\n".join(
                f"--- {name}.log\n{self.log(name)[-2500:].decode(errors='replace')}"
                for name in self.processes
            )
            raise AssertionError(f"{timed_out}\n{tails}") from None

    def swept(self) -> int:
        """Stripe events the sweeper has queued again so far (from the worker's log)."""
        return sum(int(n) for n in SWEEP_DONE.findall(self.log("worker")))

    def ran(self, task: str) -> int:
        """How many times the worker has finished ``task`` so far."""
        return len(
            re.findall(rf"{re.escape(task)}\[[^\]]+\] succeeded".encode(), self.log("worker"))
        )

    def payment_request(self, key: str) -> PaymentRequest:
        db.session.rollback()  # see what the processes committed
        return db.session.scalar(select(PaymentRequest).filter_by(request_key=key))

    def call_events(self, key: str, kind: str) -> list[CallEvent]:
        db.session.rollback()
        query = select(CallEvent).filter_by(kind=kind).order_by(CallEvent.id)
        return [e for e in db.session.scalars(query) if e.data.get("request") == key]

    def new_clinic(self, name: str) -> Clinic:
        organisation = db.session.get(Organisation, self.organisation_id)
        clinic = Clinic(organisation=organisation, name=f"{name} ({self.shape})")
        db.session.add(clinic)
        db.session.commit()
        return clinic

    def mail_to(self, address: str, subject_part: str, text_part: str = "") -> list:
        return [
            m for m in self.catcher.store.messages(to=address)
            if subject_part in m.subject and text_part in (m.text or "")
        ]  # fmt: skip

    def refund(self, request: PaymentRequest, amount: int | None = None) -> None:
        """A refund made in the clinic's Stripe dashboard (on its own account)."""
        platform = stripe.StripeClient(
            self.app.config["STRIPE_SECRET_KEY"],
            base_addresses={"api": self.stripe.base, "connect": self.stripe.base},
        )
        params = {"payment_intent": request.payment_intent_id}
        if amount is not None:
            params["amount"] = amount
        platform.v1.refunds.create(params, {"stripe_account": request.stripe_account_id})


class Browser:
    """One person's browser over HTTP: cookies, CSRF tokens and the forms they submit."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies for loopback

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base + path, timeout=30, allow_redirects=False, **kwargs)

    def post(self, path: str, data: dict) -> requests.Response:
        return self.session.post(self.base + path, data=data, timeout=30, allow_redirects=False)

    def form(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, f"{path}: {page.status_code}"
        return page.text

    def sign_in(self, email: str) -> "Browser":
        token = CSRF_FIELD.search(self.form("/sign-in")).group(1)
        answer = self.post(
            "/sign-in", {"email": email, "password": DEMO_PASSWORD, "csrf_token": token}
        )
        assert answer.status_code in (302, 303), f"signing in {email}: {answer.status_code}"
        return self

    def start_call(self, clinic_id: int, title: str) -> int:
        token = CSRF_FIELD.search(self.form("/calls/")).group(1)
        answer = self.post(
            "/calls/start", {"csrf_token": token, "clinic_id": clinic_id, "title": title}
        )
        assert answer.status_code == 303, f"starting a call: {answer.status_code}"
        return int(answer.headers["Location"].rstrip("/").rsplit("/", 1)[1])

    def request_payment(self, call_id: int, amount: str, description: str) -> str:
        """Request Payment in Apps & Tools, as the call screen submits it; the request key."""
        page = self.form(f"/calls/{call_id}")
        key = REQUEST_KEY_FIELD.search(page).group(1)
        answer = self.post(
            f"/calls/{call_id}/payment-requests",
            {"csrf_token": CSRF_FIELD.search(page).group(1), "request_key": key,
             "amount": amount, "description": description},
        )  # fmt: skip
        assert answer.status_code == 303, f"Request Payment: {answer.status_code} {answer.text}"
        # A refusal comes back to the call screen too, saying why (once).
        refused = re.search(r'id="payment-error">([^<]*)<', self.form(f"/calls/{call_id}"))
        assert refused is None, f"Request Payment refused: {refused.group(1)}"
        return key

    def stream(self, path: str) -> "EventStream":
        return EventStream(self.session, self.base + path)


class EventStream:
    """A live call stream as the call screen holds it: events as they arrive, in order."""

    def __init__(self, session: requests.Session, url: str):
        self.session, self.url = session, url
        self.events: list[dict] = []
        self.last_id = 0
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.response: requests.Response | None = None
        self.thread = threading.Thread(target=self._run, name="event-stream", daemon=True)
        self.thread.start()

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _run(self) -> None:
        while not self.stopped.is_set():
            headers = {"Accept": "text/event-stream"}
            if self.last_id:
                headers["Last-Event-ID"] = str(self.last_id)
            try:
                with self.session.get(
                    self.url, headers=headers, stream=True, timeout=(5, 30)
                ) as response:
                    self.response = response
                    if response.status_code == 200:
                        self._read(response)
            except (requests.RequestException, OSError):
                pass  # reconnect, as a browser does
            self.stopped.wait(0.5)

    def _read(self, response: requests.Response) -> None:
        buffer = b""
        # Chunk by chunk as the server sends them: a sized read would wait for more bytes.
        for chunk in response.iter_content(chunk_size=None):
            buffer += chunk
            while b"\n\n" in buffer:
                block, _, buffer = buffer.partition(b"\n\n")
                self._event(block.decode())

    def _event(self, block: str) -> None:
        fields = dict(
            line.split(": ", 1) for line in block.splitlines()
            if ": " in line and not line.startswith(":")
        )  # fmt: skip
        if "id" in fields and "data" in fields:
            with self.lock:
                self.last_id = int(fields["id"])
                self.events.append({"id": self.last_id, **json.loads(fields["data"])})

    def find(self, kind: str, **data) -> list[dict]:
        with self.lock:
            return [
                e for e in self.events
                if e["kind"] == kind and all(e.get(k) == v for k, v in data.items())
            ]  # fmt: skip

    def close(self) -> None:
        self.stopped.set()
        # The reading thread is blocked in recv(): shutting the socket down wakes it.
        with suppress(AttributeError, OSError):
            self.response.raw.connection.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(timeout=10)
