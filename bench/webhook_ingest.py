"""How fast vcpay takes in Stripe webhooks, and whether every event is kept and processed once.

Serves ``bench.webhook_app:app`` with gunicorn as ``make run`` does (gthread, 2 workers,
8 threads) on a fresh schema, then posts N unique signed ``account.updated`` events, plus about
10% of them again as duplicates, from C threads at once. The baseline,
``POST /webhooks/bench-baseline``, checks the signature exactly as ``POST /webhooks/stripe``
does but stores and enqueues nothing;
baseline and ingest rounds alternate (B I I B B I I B) so drift on the machine hits both.
Each round also records the CPU used per request by this client, by the gunicorn workers,
and by the rest of the machine (the database, the broker, anything else). Then a real Celery
worker drains the queue, and the inbox is counted: rows stored, lost, processed twice, left
unprocessed. Last, one process times the pieces of an ingest request (verify, insert, commit,
enqueue) one at a time, without HTTP, to show where the time goes.

    python bench/webhook_ingest.py [--quick] [--embedded] [--database-url URL]
                                   [--events N] [--concurrency C] [--broker-url URL]
                                   [--profile prod]

Default: PostgreSQL and a Redis broker, the production shape. ``--database-url`` names a scratch
PostgreSQL database that is created afresh and dropped at the end (default
``vcpay_bench_webhooks`` on 127.0.0.1); the broker is Redis database 14 on 127.0.0.1 (or
``--broker-url``), flushed at the start and the end. ``--embedded``: SQLite and the
file-system broker in a temporary instance folder, as ``make run`` uses them.

``--profile prod`` (PostgreSQL and Redis only): the processes as ``make run-prod`` runs them
instead, from deploy/Procfile: one web instance, gunicorn with deploy/gunicorn.conf.py (two
workers of 256 threads, the masked access log) serving ``bench.webhook_app:app`` (the baseline
route exists only there), JSON logs; and the Procfile's Celery worker for the drain.
``VCPAY_ENV`` stays unset, as in ``bench.product.ProductionProfile``.

Prints a table and, as its last line, one JSON object; saves it to bench/results/.
"""

import argparse
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis
import requests
import stripe
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.product import (  # noqa: E402
    answers,
    drop_database,
    free_port,
    machine,
    percentile,
    recreate_database,
    start,
    stop,
    wait_until,
)
from sandbox.procfile import procfile_command  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/vcpay_bench_webhooks"
REDIS_BROKER_URL = "redis://127.0.0.1:6379/14"
WEBHOOK_SECRET = "whsec_bench_webhooks"  # noqa: S105 - a throwaway server's secret
ACCOUNT = "acct_bench_unlinked"  # linked to no clinic: processing calls no one
POSTED_PREFIX = "evt_bench_"
DUPLICATE_SHARE = 0.10
ROUND_ORDER = "BIIBBIIB"
BASELINE_PATH = "/webhooks/bench-baseline"
INGEST_PATH = "/webhooks/stripe"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RATIO_GOAL = 0.8  # issue 16: ingest at least 0.8 x the bare signature check, on PostgreSQL


def signed(event_id: str) -> tuple[bytes, str]:
    """A body shaped and signed as Stripe sends it (see tests/stripe_events.py)."""
    body = {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "data": {"object": {"id": ACCOUNT, "object": "account"}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "account.updated",
        "account": ACCOUNT,
    }
    payload = json.dumps(body, indent=2)
    header = stripe.WebhookSignature.generate_signature_header(
        payload, WEBHOOK_SECRET, timestamp=int(time.time())
    )
    return payload.encode(), header


@dataclass
class Round:
    kind: str
    wall_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    answered_duplicate: int = 0
    cpu_seconds: dict[str, float] = field(default_factory=dict)


class Poster:
    """C threads, each with its own keep-alive ``requests`` session."""

    def __init__(self, base: str, concurrency: int, web_master: int):
        self.base = base
        self.web_master = web_master
        self.pool = ThreadPoolExecutor(max_workers=concurrency)
        self.local = threading.local()

    def _post(self, path: str, payload: bytes, header: str) -> tuple[float, int, bool]:
        session = getattr(self.local, "session", None) or requests.Session()
        self.local.session = session
        started = time.perf_counter()
        try:
            response = session.post(
                self.base + path,
                data=payload,
                headers={"Stripe-Signature": header, "Content-Type": "application/json"},
                timeout=60,
            )
        except requests.RequestException:
            return time.perf_counter() - started, 0, False
        seconds = time.perf_counter() - started
        duplicate = response.status_code == 200 and response.json().get("duplicate") is True
        return seconds, response.status_code, duplicate

    def run(self, kind: str, path: str, event_ids: list[str]) -> Round:
        bodies = [signed(event_id) for event_id in event_ids]  # signed now: within tolerance
        result = Round(kind)
        cpu_before = cpu_seconds(self.web_master)
        started = time.perf_counter()
        outcomes = list(self.pool.map(lambda body: self._post(path, *body), bodies))
        result.wall_seconds = time.perf_counter() - started
        cpu_after = cpu_seconds(self.web_master)
        result.cpu_seconds = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
        for seconds, status, duplicate in outcomes:
            result.latencies.append(seconds)
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.answered_duplicate += duplicate
        return result

    def close(self) -> None:
        self.pool.shutdown()


def cpu_seconds(web_master: int) -> dict[str, float]:
    """CPU used so far by this process (the client), by the gunicorn workers, and by the
    whole machine (the rest is PostgreSQL, Redis, and anything else running)."""
    web = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == web_master:
                web += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # less idle and waiting for I/O
    return {"client": sum(os.times()[:2]), "web": web, "machine": busy / CLOCK_TICKS}


def summarise(rounds: list[Round]) -> dict:
    latencies = [s for r in rounds for s in r.latencies]
    wall = sum(r.wall_seconds for r in rounds)
    return {
        "requests": len(latencies),
        "throughput_rps": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "rounds_rps": [round(len(r.latencies) / r.wall_seconds, 1) for r in rounds],
        "cpu_ms_per_request": cpu_per_request(rounds, len(latencies)),
    }


def cpu_per_request(rounds: list[Round], requests_made: int) -> dict[str, float]:
    total = {name: sum(r.cpu_seconds[name] for r in rounds) for name in ("client", "web")}
    total["database_broker_and_rest"] = (
        sum(r.cpu_seconds["machine"] for r in rounds) - total["client"] - total["web"]
    )
    return {name: round(seconds * 1000 / requests_made, 2) for name, seconds in total.items()}


def inbox_counts(engine) -> dict:
    query = text(
        "SELECT count(*), "
        "coalesce(sum(CASE WHEN attempts > 1 THEN 1 ELSE 0 END), 0), "
        "coalesce(sum(CASE WHEN state <> 'processed' THEN 1 ELSE 0 END), 0), "
        "coalesce(sum(CASE WHEN state = 'received' THEN 1 ELSE 0 END), 0) "
        "FROM stripe_events WHERE event_id LIKE :prefix"
    )
    with engine.connect() as connection:
        rows, twice, unprocessed, waiting = connection.execute(
            query, {"prefix": POSTED_PREFIX + "%"}
        ).one()
    return {"rows": rows, "twice": twice, "unprocessed": unprocessed, "waiting": waiting}


def ingest_plan(events: int, seed: int = 7) -> tuple[list[str], list[str]]:
    """The unique event ids and every post (uniques plus ~10% again), in a shuffled order."""
    unique = [f"{POSTED_PREFIX}{i:07d}" for i in range(events)]
    shuffle = random.Random(seed)  # noqa: S311 - a repeatable order, not a secret
    again = shuffle.sample(unique, round(events * DUPLICATE_SHARE))
    posts = unique + again
    shuffle.shuffle(posts)
    return unique, posts


def chunks(items: list[str], count: int) -> list[list[str]]:
    size = -(-len(items) // count)
    return [items[i : i + size] for i in range(0, len(items), size)]


def measure(poster: Poster, posts: list[str]) -> tuple[list[Round], list[Round]]:
    """Baseline and ingest rounds of the same size, interleaved B I I B B I I B."""
    ingest_chunks = iter(chunks(posts, ROUND_ORDER.count("I")))
    baseline_chunks = iter(chunks(posts, ROUND_ORDER.count("B")))
    for path in (BASELINE_PATH, INGEST_PATH):  # opens connections; not counted with the rest
        poster.run("warm-up", path, [f"evt_warmup_{path[1:5]}_{i}" for i in range(64)])
    baseline, ingest = [], []
    for number, kind in enumerate(ROUND_ORDER):
        if kind == "B":
            ids = [f"evt_baseline_{number}_{i}" for i in range(len(next(baseline_chunks)))]
            baseline.append(poster.run(kind, BASELINE_PATH, ids))
        else:
            ingest.append(poster.run(kind, INGEST_PATH, next(ingest_chunks)))
        latest = baseline[-1] if kind == "B" else ingest[-1]
        print(
            f"  round {number + 1} {'baseline' if kind == 'B' else 'ingest  '} "
            f"{len(latest.latencies):5d} requests in {latest.wall_seconds:6.2f} s "
            f"= {len(latest.latencies) / latest.wall_seconds:7.1f} req/s",
            flush=True,
        )
    return baseline, ingest


def breakdown(env: dict[str, str], samples: int) -> dict:
    """Median milliseconds of a whole request and of each piece of an ingest, in this process,
    one request at a time (no HTTP, nothing else running)."""
    os.environ.update(env)
    from bench.webhook_app import app

    median_ms = _time_requests(app, samples)
    with app.app_context():
        median_ms.update(_time_pieces(app, samples))
    return {"samples": samples, "median_ms": median_ms}


def _time_requests(app, samples: int) -> dict[str, float]:
    client = app.test_client()
    times: dict[str, list[float]] = {"baseline_request": [], "ingest_request": []}
    for i in range(samples):
        for name, path in (("baseline_request", BASELINE_PATH), ("ingest_request", INGEST_PATH)):
            payload, header = signed(f"evt_piece_{name}_{i}")
            started = time.perf_counter()
            response = client.post(path, data=payload, headers={"Stripe-Signature": header})
            times[name].append(time.perf_counter() - started)
            assert response.status_code == 200, response.get_data(as_text=True)
    return {name: _median_ms(values) for name, values in times.items()}


def _time_pieces(app, samples: int) -> dict[str, float]:
    """verify; store (the insert and its commit, on a connection of its own); hand-off (what
    the request thread pays to pass the id on); and, off the request thread, sending one
    Celery message, and taking a pooled connection (with its ping)."""
    from vcpay.extensions import db
    from vcpay.integrations.stripe_api import StripeApi
    from vcpay.webhooks import inbox, services

    stripe_api = StripeApi.from_config(app.config)
    times: dict[str, list[float]] = {name: [] for name in ("verify", "store", "handoff")}
    for i in range(samples):
        payload, header = signed(f"evt_piece_p_{i}")
        t0 = time.perf_counter()
        event = stripe_api.verify_webhook(payload, header)
        t1 = time.perf_counter()
        row_id = inbox.store_event(event)
        t2 = time.perf_counter()
        services.handoff.submit(row_id)
        t3 = time.perf_counter()
        times["verify"].append(t1 - t0)
        times["store"].append(t2 - t1)
        times["handoff"].append(t3 - t2)
    times["celery_message_off_request"] = [
        _seconds(lambda: services.enqueue(0)) for _ in range(samples)
    ]
    times["pool_checkout"] = [_seconds(lambda: db.engine.connect().close()) for _ in range(samples)]
    db.engine.dispose()
    return {name: _median_ms(values) for name, values in times.items()}


def _seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _median_ms(seconds: list[float]) -> float:
    return round(statistics.median(seconds) * 1000, 2)


def environment(instance: Path, database_url: str, broker_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCPAY_")}
    env.update(
        VCPAY_INSTANCE_PATH=str(instance),
        VCPAY_DATABASE_URL=database_url,
        VCPAY_CELERY_BROKER_URL=broker_url,
        VCPAY_STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        VCPAY_SECRET_KEY=secrets.token_urlsafe(32),
        VCPAY_SMTP_PORT="1",  # nothing here sends mail; never reach a real server
    )
    return env


def production_commands(env: dict[str, str], port: int) -> tuple[list[str], list[str]]:
    """deploy/Procfile's web (serving this benchmark's app, on ``port``) and worker, with the
    settings ``make run-prod`` gives them."""
    env.update(PORT=str(port), VCPAY_WEB_HOST="127.0.0.1", VCPAY_LOG_FORMAT="json")
    web = [
        "bench.webhook_app:app" if part == "wsgi:app" else part for part in procfile_command("web")
    ]
    if web == procfile_command("web"):
        raise SystemExit("deploy/Procfile's web no longer serves wsgi:app: update this benchmark")
    return web, procfile_command("worker")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 events, for a smoke run")
    parser.add_argument("--embedded", action="store_true", help="SQLite and the file-system broker")
    parser.add_argument("--database-url", help="scratch PostgreSQL database (dropped)")
    parser.add_argument("--events", type=int, help="unique events (default 2000; quick 200)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument(
        "--broker-url", default=REDIS_BROKER_URL, help="Redis broker database (flushed)"
    )
    parser.add_argument(
        "--profile", choices=("run", "prod"), default="run",
        help="the processes as make run (default) or make run-prod runs them",
    )  # fmt: skip
    args = parser.parse_args()
    if args.embedded and args.database_url:
        parser.error("--embedded uses SQLite in its instance folder; drop --database-url")
    if args.embedded and args.profile == "prod":
        parser.error("--profile prod runs on PostgreSQL and Redis: drop --embedded")
    args.events = args.events or (200 if args.quick else 2000)
    return args


def main() -> None:
    args = parse_args()
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    instance = Path(tempfile.mkdtemp(prefix="vcpay-bench-webhooks-"))
    if args.embedded:
        mode, database, broker = "embedded", "sqlite", "filesystem"
        database_url = f"sqlite:///{instance / 'vcpay.sqlite'}"
        broker_url = "filesystem://"
    else:
        mode, database, broker = "postgresql", "postgresql", "redis"
        database_url = args.database_url or DEFAULT_DATABASE_URL
        broker_url = args.broker_url
        redis.Redis.from_url(broker_url).flushdb()
        recreate_database(database_url)
    env = environment(instance, database_url, broker_url)
    python = sys.executable
    log = instance / "processes.log"
    subprocess.run(
        [python, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    engine = create_engine(database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web_command = [
        python, "-m", "gunicorn", "bench.webhook_app:app", "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread", "--workers", "2", "--threads", "8", "--access-logfile", "-",
    ]  # fmt: skip
    worker_command = [
        python, "-m", "celery", "-A", "workers.main", "worker", "--loglevel", "INFO",
        "--concurrency", "2",
    ]  # fmt: skip
    if args.embedded:
        worker_command += ["--without-mingle", "--without-gossip"]
    if args.profile == "prod":
        web_command, worker_command = production_commands(env, port)
    unique, posts = ingest_plan(args.events)
    processes: dict[str, subprocess.Popen] = {}
    clean: dict[str, bool] = {}
    poster: Poster | None = None
    succeeded = False
    try:
        processes["web"] = start(web_command, env, log)
        poster = Poster(base, args.concurrency, processes["web"].pid)
        if not wait_until(lambda: answers(f"{base}/healthz"), 60):
            raise SystemExit(f"gunicorn did not start; see {log}")
        print(
            f"webhook ingest, {mode} ({database} + {broker} broker, profile {args.profile}), "
            f"{len(unique)} events "
            f"+ {len(posts) - len(unique)} duplicates, concurrency {args.concurrency}",
            flush=True,
        )
        baseline_rounds, ingest_rounds = measure(poster, posts)
        clean["web"] = stop(processes.pop("web"))
        stored = inbox_counts(engine)

        drain_started = time.perf_counter()
        processes["worker"] = start(worker_command, env, log)
        drained = wait_until(
            lambda: inbox_counts(engine)["waiting"] == 0, 120 if args.quick else 600, every=0.5
        )
        drain_seconds = time.perf_counter() - drain_started
        time.sleep(2)  # a second run of any event would land now
        clean["worker"] = stop(processes.pop("worker"))
        counts = inbox_counts(engine)
        engine.dispose()
        pieces = breakdown(env, 50 if args.quick else 200)
        succeeded = True
    finally:
        if poster is not None:
            poster.close()
        for name, process in processes.items():
            clean[name] = stop(process)
        engine.dispose()
        if not args.embedded:
            redis.Redis.from_url(broker_url).flushdb()
            drop_database(database_url)
        if succeeded and all(clean.values()):
            shutil.rmtree(instance, ignore_errors=True)
        else:
            print(f"logs kept in {instance}", file=sys.stderr)

    refused = sum(n for r in baseline_rounds for status, n in r.statuses.items() if status != 200)
    if refused:  # a baseline refused before its signature check measures nothing useful
        print(f"the baseline answered {refused} requests with other than 200", file=sys.stderr)
    baseline = summarise(baseline_rounds)
    ingest = summarise(ingest_rounds)
    ratio = round(ingest["throughput_rps"] / baseline["throughput_rps"], 3)
    all_rounds = baseline_rounds + ingest_rounds
    non_2xx = sum(n for r in all_rounds for status, n in r.statuses.items() if status != 200)
    duplicates = len(posts) - len(unique)
    summary = {
        "benchmark": "webhook_ingest",
        "date": started_at.isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "mode": mode,
        "profile": args.profile,
        "database": database,
        "broker": broker,
        "quick": args.quick,
        "events": len(unique),
        "duplicates": duplicates,
        "concurrency": args.concurrency,
        "baseline": baseline,
        "ingest": ingest,
        "ratio": ratio,
        "goal_met": ratio >= RATIO_GOAL if database == "postgresql" else None,
        "rows_stored": stored["rows"],
        "lost": len(unique) - counts["rows"],
        "processed_twice": counts["twice"],
        "unprocessed": counts["unprocessed"],
        "duplicates_answered": sum(r.answered_duplicate for r in ingest_rounds),
        "non_2xx": non_2xx,
        "drain_seconds": round(drain_seconds, 1) if drained else None,
        "breakdown": pieces,
        "stopped_cleanly": clean,
    }
    summary["no_loss_goal_met"] = (
        summary["lost"] == 0
        and summary["processed_twice"] == 0
        and summary["unprocessed"] == 0
        and summary["duplicates_answered"] == duplicates
    )
    print_table(summary)
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    profile = "-prod" if args.profile == "prod" else ""
    name = f"webhook_ingest-{mode}{profile}{'-quick' if args.quick else ''}-{stamp}.json"
    (out / name).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


def print_table(summary: dict) -> None:
    print()
    print(
        f"{'endpoint':<22} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}   CPU ms per request: "
        f"{'client':>6} {'web':>6} {'db+broker+rest':>14}"
    )
    for label, key in (("baseline (verify only)", "baseline"), ("ingest", "ingest")):
        figures = summary[key]
        cpu = figures["cpu_ms_per_request"]
        print(
            f"{label:<22} {figures['throughput_rps']:8.1f} "
            f"{figures['p50_ms']:8.1f} {figures['p99_ms']:8.1f}   {'':20}"
            f"{cpu['client']:6.2f} {cpu['web']:6.2f} {cpu['database_broker_and_rest']:14.2f}"
        )
    goal = "n/a (the goal is on PostgreSQL)" if summary["goal_met"] is None else summary["goal_met"]
    print(f"ingest / baseline throughput: {summary['ratio']:.2f} (goal >= {RATIO_GOAL}: {goal})")
    print(
        f"posted {summary['events']} unique + {summary['duplicates']} duplicates; "
        f"stored {summary['rows_stored']}; lost {summary['lost']}; "
        f"processed twice {summary['processed_twice']}; unprocessed {summary['unprocessed']}; "
        f"answered duplicate {summary['duplicates_answered']}; non-2xx {summary['non_2xx']}"
    )
    drain = summary["drain_seconds"]
    print(f"worker drained the inbox in {drain} s" if drain else "worker did NOT drain in time")
    pieces = summary["breakdown"]["median_ms"]
    print(
        "one request at a time, median ms: "
        + ", ".join(f"{name} {ms}" for name, ms in pieces.items())
    )
    print(f"stopped cleanly (nothing left to kill): {summary['stopped_cleanly']}")


if __name__ == "__main__":
    main()
