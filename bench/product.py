"""vcpay as ``make run`` serves it, for the benchmarks that drive the whole product over HTTP.

``Product`` starts the Stripe and mail stand-ins, migrates and seeds a fresh database, then
runs gunicorn (gthread, 2 workers, ``VCPAY_WEB_THREADS`` threads; or gevent, 2 workers,
``VCPAY_WEB_CONNECTIONS`` connections each) and a Celery worker
(``--concurrency 2``) with the same command lines as ``sandbox.demo.demo_processes``, each in
its own process group. It links the GP clinic's Stripe account through the real Go to Stripe
flow over HTTP, and stops everything (and drops the scratch database) at the end.

``Browser`` is a signed-in person: a ``requests`` session whose connections all come from one
loopback address (sessions are bound to the address; Request Payment is limited to 30 a minute
per address, so a benchmark spreads its requests over several people, one address each).

``StreamHub`` reads any number of Server-Sent Event streams on one thread (a selector over raw
sockets), and stamps each event with the wall-clock time its bytes were read.
"""

import json
import os
import platform
import re
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import redis
import requests
from requests.adapters import HTTPAdapter
from sqlalchemy.engine import make_url

from sandbox.procfile import procfile_command
from sandbox.stripe.control_client import StripeControl

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "vcpay-demo-2026"  # noqa: S105 - the demo's published password
CLINICIAN = "clinician@harbourside.example"
CLINIC_ADMIN = "clinicadmin@harbourside.example"
GP_CLINIC = "Harbourside GP Clinic"
GP_STRIPE_ACCOUNT = "Harbourside GP Clinic Pty Ltd"  # one of the stand-in's demo accounts
CLIENT_ID = "ca_vcpay_sandbox"
STOP_SECONDS = 30
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
START_FORM = re.compile(r'name="clinic_id" type="hidden" value="(\d+)"[^>]*>\s*<h3>([^<]+)</h3>')
LAST_EVENT_ID = re.compile(r'data-last-event-id="(\d+)"')
VCPAY_PROCESSES = ("web", "worker", "beat")  # stopped before the stand-ins they talk to


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """In its own process group, so stopping it stops its children too."""
    with log.open("ab") as output:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def stop(process: subprocess.Popen) -> bool:
    """Ask the leader to shut down (it stops its own children), then make sure its process
    group is empty, killing what is left after a while; True if nothing had to be killed."""
    group = process.pid
    process.terminate()
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_SECONDS)
    clean = wait_until(lambda: process.poll() is not None and not _group_alive(group), 10)
    if not clean:
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        process.wait(timeout=STOP_SECONDS)
    return clean


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(check: Callable[[], bool], seconds: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return False


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def cpu_seconds(groups: list[int]) -> dict[str, float]:
    """CPU used so far by this process (the client), by the given process groups (vcpay), and
    by the whole machine."""
    server = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) in groups:
                server += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # less idle and waiting for I/O
    return {"client": sum(os.times()[:2]), "server": server, "machine": busy / CLOCK_TICKS}


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def resident_kib(pid: int) -> int:
    with suppress(OSError, StopIteration):
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1])
    return 0


def tcp_states(port: int) -> dict[str, int]:
    """Server-side sockets of a local port by TCP state (ESTABLISHED, CLOSE_WAIT, ...)."""
    names = {"01": "ESTABLISHED", "08": "CLOSE_WAIT", "0A": "LISTEN"}
    counts: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if int(parts[1].rsplit(":", 1)[1], 16) == port:
                    state = names.get(parts[3], parts[3])
                    counts[state] = counts.get(state, 0) + 1
    return counts


# -- facts about the run -----------------------------------------------------------------------


def machine() -> dict:
    cpu = platform.processor()
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with suppress(OSError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GB"
    return {
        "node": platform.node(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": memory,
        "python": platform.python_version(),
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary_ms(seconds: list[float]) -> dict:
    if not seconds:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "max_ms": None}
    return {
        "count": len(seconds),
        "p50_ms": round(percentile(seconds, 0.50) * 1000, 1),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def save(summary: dict, name: str) -> None:
    """Write the summary under bench/results/ and print it as the last line."""
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


# -- scratch PostgreSQL database and Redis -----------------------------------------------------


def _maintenance_connection(database_url: str) -> psycopg.Connection:
    url = make_url(database_url)
    return psycopg.connect(
        host=url.host, port=url.port or 5432, user=url.username, password=url.password,
        dbname="postgres", autocommit=True,
    )  # fmt: skip


def recreate_database(database_url: str) -> None:
    name = make_url(database_url).database
    with _maintenance_connection(database_url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_database(database_url: str) -> None:
    name = make_url(database_url).database
    with _maintenance_connection(database_url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_version(database_url: str) -> str:
    with _maintenance_connection(database_url) as connection:
        return str(connection.execute("SHOW server_version").fetchone()[0])


# -- people over HTTP --------------------------------------------------------------------------


class FromAddress(HTTPAdapter):
    """Every connection from one loopback address (127.0.0.0/8 all reaches this machine)."""

    def __init__(self, address: str):
        self.address = address
        super().__init__(pool_connections=1, pool_maxsize=4)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.address, 0)
        super().init_poolmanager(*args, **kwargs)


class Browser:
    """One person's browser: cookies, CSRF tokens, and one source address."""

    def __init__(self, base: str, address: str = "127.0.0.1"):
        self.base = base
        self.address = address
        self.session = requests.Session()
        self.session.trust_env = False  # no proxies for loopback
        self.session.mount("http://", FromAddress(address))

    def get(self, path: str, **kwargs) -> requests.Response:
        url = path if path.startswith("http") else self.base + path
        return self.session.get(url, timeout=30, allow_redirects=False, **kwargs)

    def post(self, path: str, data: dict, **kwargs) -> requests.Response:
        return self.session.post(
            self.base + path, data=data, timeout=30, allow_redirects=False, **kwargs
        )

    def csrf(self, path: str) -> str:
        page = self.get(path)
        match = CSRF_FIELD.search(page.text)
        if page.status_code != 200 or not match:
            raise RuntimeError(f"no form on {path}: {page.status_code}")
        return match.group(1)

    def sign_in(self, email: str) -> "Browser":
        token = self.csrf("/sign-in")
        answer = self.post("/sign-in", {"email": email, "password": PASSWORD, "csrf_token": token})
        if answer.status_code not in (302, 303):
            raise RuntimeError(f"could not sign in {email}: {answer.status_code}")
        return self

    @property
    def user_agent(self) -> str:
        return str(self.session.headers["User-Agent"])

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.session.cookies)

    # The clinician's side of a call.

    def clinic_ids(self) -> dict[str, int]:
        return {name.strip(): int(i) for i, name in START_FORM.findall(self.get("/calls/").text)}

    def start_call(self, clinic_id: int, title: str) -> int:
        token = self.csrf("/calls/")
        answer = self.post(
            "/calls/start", {"csrf_token": token, "clinic_id": clinic_id, "title": title}
        )
        if answer.status_code != 303:
            raise RuntimeError(f"could not start a call: {answer.status_code}")
        return int(answer.headers["Location"].rstrip("/").rsplit("/", 1)[1])

    def call_form(self, call_id: int) -> dict:
        """The Request Payment form's hidden fields, and the newest event id, from the page."""
        page = self.get(f"/calls/{call_id}").text
        return {
            "csrf_token": CSRF_FIELD.search(page).group(1),
            "request_key": page.split('name="request_key" type="hidden" value="')[1].split('"')[0],
            "last_event_id": int(LAST_EVENT_ID.search(page).group(1)),
        }

    def request_payment(
        self, call_id: int, csrf_token: str, request_key: str, amount: str, description: str
    ) -> requests.Response:
        """Submit the Request Payment form as the call screen does (303 back to the screen)."""
        return self.post(
            f"/calls/{call_id}/payment-requests",
            {"csrf_token": csrf_token, "request_key": request_key, "amount": amount,
             "description": description},
        )  # fmt: skip


def new_request_key() -> str:
    return secrets.token_urlsafe(18)  # as RequestPaymentForm.fresh makes them


def addresses(count: int) -> list[str]:
    return [f"127.0.0.{2 + i}" for i in range(count)]


# -- the product ------------------------------------------------------------------------------


@dataclass
class Product:
    """One fresh vcpay: ``embedded`` (SQLite, file-system broker, no Redis) or ``production``
    (a scratch PostgreSQL database, Redis broker, and ``VCPAY_REDIS_URL`` for live updates)."""

    mode: str
    database_url: str = ""
    redis_broker_url: str = "redis://127.0.0.1:6379/12"
    redis_url: str = "redis://127.0.0.1:6379/13"
    extra_env: dict[str, str] = field(default_factory=dict)
    worker_class: str = "gthread"  # or "gevent": an open stream costs a greenlet
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    clean: dict[str, bool] = field(default_factory=dict)
    failed: bool = False

    def __post_init__(self):
        self.instance = Path(tempfile.mkdtemp(prefix=f"vcpay-bench-{self.mode}-"))
        self.log = self.instance / "processes.log"
        self.web_port, self.stripe_port = free_port(), free_port()
        self.smtp_port, self.mail_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.web_port}"
        self.stripe_base = f"http://127.0.0.1:{self.stripe_port}"
        self.stripe = StripeControl(self.stripe_base, timeout=30)
        if self.mode == "embedded":
            self.database_url = f"sqlite:///{self.instance / 'vcpay.sqlite'}"
            self.broker_url, self.live_redis = "filesystem://", ""
        else:
            self.broker_url, self.live_redis = self.redis_broker_url, self.redis_url
        self.env = self._environment()

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VCPAY_")}
        env.update(
            VCPAY_INSTANCE_PATH=str(self.instance),
            VCPAY_DATABASE_URL=self.database_url,
            VCPAY_CELERY_BROKER_URL=self.broker_url,
            VCPAY_REDIS_URL=self.live_redis,
            VCPAY_PUBLIC_URL=self.base,
            VCPAY_STRIPE_API_BASE=self.stripe_base,
            VCPAY_SMTP_HOST="127.0.0.1",
            VCPAY_SMTP_PORT=str(self.smtp_port),
            VCPAY_MAIL_CATCHER_URL=f"http://127.0.0.1:{self.mail_port}",
            VCPAY_JIRA_URL="http://127.0.0.1:1",  # nothing here talks to Jira
            VCPAY_SECRET_KEY=secrets.token_urlsafe(32),
            **self.extra_env,
        )
        return env

    @property
    def web_threads(self) -> int:
        return int(self.env.get("VCPAY_WEB_THREADS") or 256)

    @property
    def web_connections(self) -> int:
        return int(self.env.get("VCPAY_WEB_CONNECTIONS") or 1000)

    def web_concurrency(self) -> list[str]:
        """gunicorn's worker options: threads for gthread, connections (the same number the
        application caps its streams by) for gevent."""
        if self.worker_class == "gevent":
            return ["--worker-class", "gevent", "--worker-connections", str(self.web_connections)]
        return ["--worker-class", "gthread", "--threads", str(self.web_threads)]

    def commands(self) -> dict[str, list[str]]:
        """As ``sandbox.demo.demo_processes`` and ``stripe_standin_command`` build them, except
        that the stand-ins keep their state in memory (no state file rewritten on every
        change: its cost would grow with every Checkout Session the benchmark makes)."""
        python = sys.executable
        worker = [
            python, "-m", "celery", "-A", "workers.main", "worker", "--loglevel", "INFO",
            "--concurrency", "2",
        ]  # fmt: skip
        if self.mode == "embedded":
            worker += ["--without-mingle", "--without-gossip"]
        return {
            "stripe": [
                python, "-m", "sandbox.stripe", "--host", "127.0.0.1",
                "--port", str(self.stripe_port), "--public-url", self.stripe_base,
                "--client-id", CLIENT_ID,
                "--redirect-uri", f"{self.base}/client-payments/stripe/callback",
                "--webhook-url", f"{self.base}/webhooks/stripe", "--demo-accounts",
            ],
            "mail": [
                python, "-m", "sandbox.mail", "--host", "127.0.0.1",
                "--smtp-port", str(self.smtp_port), "--http-port", str(self.mail_port),
            ],
            "web": [
                python, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{self.web_port}",
                "--workers", "2", *self.web_concurrency(), "--access-logfile", "-",
            ],
            "worker": worker,
        }  # fmt: skip

    def flask(self, *arguments: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *arguments],
            cwd=ROOT, env=self.env, check=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def start(self) -> "Product":
        if self.mode != "embedded":
            self._flush_redis()
            recreate_database(self.database_url)
        self.flask("db", "upgrade")
        self.flask("seed-demo")
        for name, command in self.commands().items():
            self.processes[name] = start(command, self.env | self.process_env(name), self.log)
        for name, check in self.readiness_checks().items():
            if not wait_until(check, 60):
                self.failed = True
                raise RuntimeError(f"{name} did not start; see {self.log}")
        return self

    def process_env(self, name: str) -> dict[str, str]:
        """Settings of the process ``name`` alone, over the shared environment."""
        return {}

    def readiness_checks(self) -> dict[str, Callable[[], bool]]:
        return {
            "web": lambda: answers(f"{self.base}/healthz"),
            "stripe": lambda: answers(f"{self.stripe_base}/_sandbox/accounts"),
            "worker": lambda: b"ready." in self.log.read_bytes(),
        }

    def link_gp_clinic(self) -> int:
        """Go to Stripe as the clinic admin, consent on the stand-in with the GP clinic's
        demo account, and come back to the callback: the GP clinic's id."""
        clinician = Browser(self.base).sign_in(CLINICIAN)
        clinic_id = clinician.clinic_ids()[GP_CLINIC]
        admin = Browser(self.base).sign_in(CLINIC_ADMIN)
        token = admin.csrf(f"/client-payments/clinics/{clinic_id}")
        clinic_page = f"/client-payments/clinics/{clinic_id}"
        go = admin.post(f"{clinic_page}/stripe/connect", {"csrf_token": token})
        if go.status_code != 303:
            raise RuntimeError(f"Go to Stripe answered {go.status_code}")
        query = {k: v[0] for k, v in parse_qs(urlsplit(go.headers["Location"]).query).items()}
        accounts = self.stripe.call("GET", "accounts")
        account = next(a["id"] for a in accounts if GP_STRIPE_ACCOUNT in json.dumps(a))
        consent = self.stripe.call(
            "POST", "oauth/authorize",
            {"client_id": query["client_id"], "redirect_uri": query["redirect_uri"],
             "state": query.get("state"), "scope": query.get("scope", "read_write"),
             "account": account},
        )  # fmt: skip
        back = admin.get(consent["location"])
        if back.status_code != 303 or clinic_page not in back.headers.get("Location", ""):
            raise RuntimeError(f"the Stripe callback answered {back.status_code}")
        return clinic_id

    def web_memory(self) -> dict[str, float]:
        """Resident memory of gunicorn (masters and workers of every web instance), from /proc,
        in MiB."""
        masters = [p.pid for name, p in self.processes.items() if name.split(".")[0] == "web"]
        pids = [pid for master in masters for pid in (master, *children(master))]
        sizes = [resident_kib(pid) for pid in pids]
        return {
            "processes": len(pids),
            "total_mib": round(sum(sizes) / 1024, 1),
            "largest_mib": round(max(sizes) / 1024, 1),
        }

    def server_groups(self) -> list[int]:
        return [p.pid for name, p in self.processes.items() if name.startswith(("web", "worker"))]

    def _flush_redis(self) -> None:
        for url in (self.redis_broker_url, self.redis_url):
            redis.Redis.from_url(url).flushdb()

    def close(self) -> dict[str, bool]:
        """Stop every process group; drop the scratch database and flush Redis; remove the
        instance folder unless something went wrong."""
        for name in sorted(self.processes, key=lambda n: not n.startswith(VCPAY_PROCESSES)):
            self.clean[name] = stop(self.processes.pop(name))
        if self.mode != "embedded":
            with suppress(Exception):
                self._flush_redis()
            drop_database(self.database_url)
        if self.failed or not all(self.clean.values()):
            print(f"logs kept in {self.instance}", file=sys.stderr)
        else:
            shutil.rmtree(self.instance, ignore_errors=True)
        return self.clean


@dataclass
class ProductionProfile(Product):
    """vcpay as ``make run-prod`` runs it: deploy/Procfile's commands (``sandbox.procfile``)
    for ``web_instances`` web instances (gunicorn with deploy/gunicorn.conf.py, each on its own
    port: there is no proxy, the benchmark spreads its people over them), two Celery workers
    and one beat, on a scratch PostgreSQL database and Redis, with the Stripe, Jira and mail
    stand-ins. ``VCPAY_ENV`` stays unset: production refuses the stand-ins' published keys."""

    mode: str = "production"
    web_instances: int = 2

    def __post_init__(self):
        super().__post_init__()
        self.web_ports = [self.web_port] + [free_port() for _ in range(self.web_instances - 1)]
        self.bases = [f"http://127.0.0.1:{port}" for port in self.web_ports]
        self.jira_base = f"http://127.0.0.1:{free_port()}"
        self.env.update(VCPAY_JIRA_URL=self.jira_base, VCPAY_WEB_HOST="127.0.0.1")
        # As make run-prod: one beat at a time, by its lock in Redis (and no schedule file
        # left in the working directory)
        self.env.setdefault("VCPAY_BEAT_LOCK", "true")
        # deploy/gunicorn.conf.py reads the worker class from the environment
        self.env.setdefault("VCPAY_WEB_WORKER_CLASS", self.worker_class)

    @property
    def web_threads(self) -> int:
        return int(self.env.get("VCPAY_WEB_THREADS") or 256)  # as deploy/gunicorn.conf.py

    def commands(self) -> dict[str, list[str]]:
        standins = {k: v for k, v in super().commands().items() if k in ("stripe", "mail")}
        jira_port = urlsplit(self.jira_base).port
        standins["jira"] = [
            sys.executable, "-m", "sandbox.jira", "--host", "127.0.0.1",
            "--port", str(jira_port), "--public-url", self.jira_base,
        ]  # fmt: skip
        webs = {f"web.{n + 1}": procfile_command("web") for n in range(self.web_instances)}
        workers = {
            f"worker.{n}": procfile_command("worker", "--hostname", f"worker{n}@%h") for n in (1, 2)
        }  # two on one host need names of their own
        return standins | webs | workers | {"beat.1": procfile_command("beat")}

    def process_env(self, name: str) -> dict[str, str]:
        if name.startswith("web."):
            return {"PORT": str(self.web_ports[int(name.split(".")[1]) - 1])}
        return {}

    def readiness_checks(self) -> dict[str, Callable[[], bool]]:
        checks = {
            f"web at {base}": lambda base=base: answers(f"{base}/healthz") for base in self.bases
        }
        return checks | {
            "stripe": lambda: answers(f"{self.stripe_base}/_sandbox/accounts"),
            "jira": lambda: answers(f"{self.jira_base}/_sandbox/clock"),
            "workers": lambda: self.log.read_bytes().count(b" ready.") >= 2,
        }

    def groups(self, kind: str) -> list[int]:
        """Process groups of one kind (web, worker, beat): each leader and its children."""
        return [p.pid for name, p in self.processes.items() if name.startswith(f"{kind}.")]


def redis_urls(database: int | None) -> dict[str, str]:
    """``--redis-db``: the broker and live updates share one Redis database (flushed)."""
    if database is None:
        return {}
    url = f"redis://127.0.0.1:6379/{database}"
    return {"redis_broker_url": url, "redis_url": url}


def product_on(profile: str, mode: str, database_url: str, **options) -> Product:
    """The product an earlier benchmark measures: as ``make run`` runs it (``profile``
    "run", in ``mode``), or as ``make run-prod`` does ("prod": always PostgreSQL and Redis)."""
    if profile == "prod":
        return ProductionProfile(database_url=database_url, **options)
    return Product(mode, database_url, **options)


# -- Server-Sent Events -----------------------------------------------------------------------


@dataclass
class Stream:
    path: str
    cookie: str
    user_agent: str
    source: str
    sock: socket.socket | None = None
    raw: bytes = b""
    headers_read: bool = False
    status: int = 0
    body: bytes = b""  # de-chunked, not yet split into events
    chunk_left: int = 0  # bytes of the current chunk still to come (plus its CRLF)
    first_bytes_at: float | None = None  # when the ``retry:`` line arrived
    last_id: int = 0
    events: int = 0
    open: bool = False
    reconnects: int = 0
    error: str = ""
    dropped: bool = False  # closed by the reader (the call screen left): not reopened
    ended_by: str = ""  # the named event the server ended the stream with (replaced, closed)


class StreamHub:
    """Reads SSE streams on one thread; each event is stamped with ``time.time()`` when its
    bytes came off the socket. A stream the server ends is reopened with ``Last-Event-ID``,
    as a browser does."""

    def __init__(self, host: str, port: int, on_event: Callable[[float, Stream, dict], None]):
        self.host, self.port = host, port
        self.on_event = on_event
        self.selector = selectors.DefaultSelector()
        self.streams: list[Stream] = []
        self.pending: list[Stream] = []
        self.leaving: list[Stream] = []
        self.lock = threading.Lock()
        self.wake_r, self.wake_w = socket.socketpair()
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)
        self.stopping = False
        self.thread = threading.Thread(target=self._run, name="sse-hub", daemon=True)
        self.thread.start()

    def open(self, path: str, browser: Browser) -> Stream:
        stream = Stream(path, browser.cookie_header(), browser.user_agent, browser.address)
        self._connect(stream)
        with self.lock:
            self.streams.append(stream)
            self.pending.append(stream)
        self.wake_w.send(b"x")
        return stream

    def drop(self, stream: Stream) -> None:
        """Close one stream, as a call screen does when it is left (on the hub's thread,
        which owns the selector)."""
        with self.lock:
            self.leaving.append(stream)
        self.wake_w.send(b"x")

    def _connect(self, stream: Stream) -> None:
        sock = socket.create_connection(
            (self.host, self.port), timeout=10, source_address=(stream.source, 0)
        )
        resume = f"Last-Event-ID: {stream.last_id}\r\n" if stream.last_id else ""
        sock.sendall(
            (
                f"GET {stream.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"User-Agent: {stream.user_agent}\r\nAccept: text/event-stream\r\n"
                f"Cache-Control: no-cache\r\nCookie: {stream.cookie}\r\n{resume}\r\n"
            ).encode()
        )
        sock.setblocking(False)
        stream.sock, stream.raw, stream.headers_read, stream.body = sock, b"", False, b""
        stream.chunk_left, stream.open = 0, True

    def _run(self) -> None:
        while not self.stopping:
            with self.lock:
                for stream in self.pending:
                    self.selector.register(stream.sock, selectors.EVENT_READ, stream)
                self.pending.clear()
                for stream in self.leaving:
                    stream.dropped = True
                    self._ended(stream, reopen=False)
                    self.streams.remove(stream)
                self.leaving.clear()
            for key, _mask in self.selector.select(timeout=0.5):
                if key.data is None:
                    with suppress(BlockingIOError):
                        self.wake_r.recv(4096)
                    continue
                self._read(key.data)

    def _read(self, stream: Stream) -> None:
        try:
            data = stream.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as error:
            data, stream.error = b"", str(error)
        now = time.time()
        if not data:
            self._ended(stream)
            return
        stream.raw += data
        if not stream.headers_read:
            head, found, rest = stream.raw.partition(b"\r\n\r\n")
            if not found:
                return
            stream.status = int(head.split(b" ", 2)[1])
            stream.headers_read, stream.raw = True, rest
            if stream.status != 200 or b"chunked" not in head.lower():
                stream.error = f"HTTP {stream.status}"
                self._ended(stream, reopen=False)
                return
        finished = self._dechunk(stream)
        while b"\n\n" in stream.body:
            block, _, stream.body = stream.body.partition(b"\n\n")
            self._block(now, stream, block.decode())
        if finished:  # the response ended with the connection kept alive: as a browser does,
            # reconnect, unless a newer stream replaced this one (the page then says so)
            self._ended(stream, reopen=not stream.ended_by.startswith("replaced"))

    def _dechunk(self, stream: Stream) -> bool:
        """Move what has arrived into the body; True once the last (empty) chunk came."""
        while stream.raw:
            if stream.chunk_left == 0:
                line, found, rest = stream.raw.partition(b"\r\n")
                if not found:
                    return False
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    stream.raw = b""
                    return True
                stream.raw, stream.chunk_left = rest, size + 2
            taken = stream.raw[: stream.chunk_left]
            stream.raw = stream.raw[stream.chunk_left :]
            stream.chunk_left -= len(taken)
            stream.body += taken[: max(0, len(taken) - max(0, 2 - stream.chunk_left))]
        return False

    def _block(self, now: float, stream: Stream, block: str) -> None:
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":") or ":" not in line:
                continue
            name, value = line.split(":", 1)
            fields[name] = value[1:] if value.startswith(" ") else value
        if "event" in fields and "id" not in fields:  # replaced, closed: the end of it
            stream.ended_by = f"{fields['event']} {fields.get('data', '')}".strip()
        if "retry" in fields and stream.first_bytes_at is None:
            stream.first_bytes_at = now
        if "id" in fields and "data" in fields:
            stream.last_id = int(fields["id"])
            stream.events += 1
            self.on_event(now, stream, json.loads(fields["data"]))

    def _ended(self, stream: Stream, reopen: bool = True) -> None:
        with suppress(KeyError, ValueError):
            self.selector.unregister(stream.sock)
        with suppress(OSError):
            stream.sock.close()
        stream.open = False
        if reopen and not self.stopping:
            try:
                self._connect(stream)
            except OSError as error:
                stream.error = str(error)
                return
            stream.reconnects += 1
            self.selector.register(stream.sock, selectors.EVENT_READ, stream)

    def close(self) -> None:
        """Stop reading and close every stream (the server notices at its next keepalive)."""
        self.stopping = True
        self.wake_w.send(b"x")
        self.thread.join(timeout=10)
        for stream in self.streams:
            if stream.sock is not None:
                with suppress(OSError):
                    stream.sock.shutdown(socket.SHUT_RDWR)
                with suppress(OSError):
                    stream.sock.close()
            stream.open = False
        self.selector.close()
        self.wake_r.close()
        self.wake_w.close()
