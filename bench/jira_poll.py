"""How much a Jira poll costs: HTTP calls and wall time per poll, by open requests and changes.

For each number of open requests (10, 100, 1,000) and each number changed since the last poll
(0, 5, 50) it builds a fresh stand-in and database, raises the requests two days in the past
(as a real backlog would be), approves k of them in the stand-in, then times one poll and
counts the calls the stand-in received. A baseline in the same run times one bare search call,
so figures can be compared across machines. Then it runs a real Celery worker and beat and
measures how long a decision takes to enable a clinic: by polling alone, and again with the
stand-in's signed webhook posted to vcpay's web server (gunicorn), which queues a look at the
one request that changed.

    python bench/jira_poll.py [--quick] [--database-url URL] [--profile prod]

``--profile prod``: the decisions are applied by deploy/Procfile's processes, as ``make
run-prod`` runs them (two Celery workers and beat under its Redis lock, Redis as the broker,
Redis databases 10 and 11, flushed; the webhook's web server with deploy/gunicorn.conf.py).
It needs a PostgreSQL ``--database-url``.

Prints a table and, as its last line, one JSON object; saves it to bench/results/.
"""

import argparse
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import redis
import requests
from sqlalchemy import delete, insert

ROOT = Path(__file__).resolve().parent.parent
PROD_BROKER_URL = "redis://127.0.0.1:6379/10"
PROD_REDIS_URL = "redis://127.0.0.1:6379/11"
sys.path.insert(0, str(ROOT))

from bench.product import answers, free_port, start, stop, wait_until  # noqa: E402
from sandbox.jira.control_client import JiraControl  # noqa: E402
from sandbox.jira.server import start_jira_standin, stop_jira_standin  # noqa: E402
from sandbox.procfile import procfile_command  # noqa: E402
from vcpay import create_app  # noqa: E402
from vcpay.database import utcnow  # noqa: E402
from vcpay.enablement import polling  # noqa: E402
from vcpay.enablement.models import EnablementRequest, RequestedClinic, RequestState  # noqa: E402
from vcpay.extensions import db  # noqa: E402
from vcpay.integrations.servicedesk import ServiceDesk, forget_clients  # noqa: E402
from vcpay.people.models import Clinic, Organisation, User  # noqa: E402

TWO_DAYS = 2 * 24 * 3600


def empty_database() -> None:
    for table in reversed(db.metadata.sorted_tables):
        db.session.execute(delete(table))
    db.session.commit()


def backlog(standin: JiraControl, open_requests: int) -> list[dict]:
    """``open_requests`` raised two days ago in Jira and recorded as raised in vcpay."""
    standin.reset()
    standin.shift_clock(-TWO_DAYS)
    standin.bulk(open_requests, customer_email="m@bench.example")
    standin.shift_clock(0)
    raised = standin.requests()
    empty_database()
    organisation = Organisation(name="Bench Health")
    requester = User(email="m@bench.example", name="Bench Manager", password_hash="x")  # noqa: S106 - never signs in
    db.session.add_all([organisation, requester])
    db.session.flush()
    two_days_ago = utcnow() - timedelta(days=2)
    clinics = [
        {"organisation_id": organisation.id, "name": f"Clinic {i}", "created_at": two_days_ago}
        for i in range(open_requests)
    ]
    db.session.execute(insert(Clinic), clinics)
    clinic_ids = [c.id for c in organisation.clinics]
    rows = [
        {
            "organisation_id": organisation.id,
            "correlation_id": f"vcpay-er-bench{i:07d}",
            "state": RequestState.RAISED.value,
            "requester_id": requester.id,
            "jira_key": issue["key"],
            "jira_status": issue["status"],
            "jira_updated": issue["updated"],
            "raised_at": two_days_ago,
            "created_at": two_days_ago,
            "updated_at": two_days_ago,
        }
        for i, issue in enumerate(raised)
    ]
    db.session.execute(insert(EnablementRequest), rows)
    ids = dict(
        db.session.execute(db.select(EnablementRequest.jira_key, EnablementRequest.id)).all()
    )
    db.session.execute(
        insert(RequestedClinic),
        [
            {
                "request_id": ids[issue["key"]],
                "clinic_id": clinic_ids[i],
                "has_stripe_account": True,
                "stripe_account_hint": "",
            }
            for i, issue in enumerate(raised)
        ],
    )
    db.session.commit()
    return raised


def calls_by_kind(calls: list[dict]) -> dict[str, int]:
    kinds = {"search": 0, "approvals": 0, "comments": 0, "other": 0}
    for call in calls:
        path = call["path"]
        if "/search" in path:
            kinds["search"] += 1
        elif path.endswith("/approval"):
            kinds["approvals"] += 1
        elif "/comment" in path:
            kinds["comments"] += 1
        else:
            kinds["other"] += 1
    kinds["total"] = len(calls)
    return kinds


def one_scenario(app, standin: JiraControl, open_requests: int, changed: int) -> dict:
    raised = backlog(standin, open_requests)
    forget_clients()
    desk = ServiceDesk.from_config(app.config)
    polling.poll(desk)  # settles the cursor on the backlog, as a running system has
    for issue in raised[:changed]:
        standin.decide(issue["key"], "approve")
    standin.clear_calls()
    started = time.perf_counter()
    report = polling.poll(desk)
    seconds = time.perf_counter() - started
    calls = calls_by_kind(standin.calls())
    enabled = db.session.scalar(
        db.select(db.func.count()).select_from(Clinic).where(Clinic.gateway_enabled_at.is_not(None))
    )
    max_pages = max(1, math.ceil(changed / polling.SEARCH_PAGE))
    return {
        "open_requests": open_requests,
        "changed": changed,
        "poll_seconds": round(seconds, 4),
        "calls": calls,
        "requests_seen": report.seen,
        "clinics_enabled": enabled,
        "goal_met": calls["search"] <= max_pages
        and calls["approvals"] == changed
        and enabled == changed
        and (changed > 0 or calls["search"] == 1),
    }


def baseline_search(standin: JiraControl, samples: int = 20) -> float:
    """The median time of one bare search call: the unit the poll times compare with."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        requests.get(
            f"{standin.base}/rest/api/2/search/jql",
            params={"jql": "project = PAY ORDER BY key ASC", "maxResults": 50},
            auth=("vcpay@servicedesk.example", "sandbox-api-token"),
            timeout=30,
        ).raise_for_status()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def serve_webhooks(env: dict, instance: Path, profile: str) -> tuple[subprocess.Popen, str]:
    """vcpay's web server for the stand-in's webhooks: gunicorn as `make run` runs it, or
    with deploy/Procfile's command (profile "prod")."""
    port = free_port()
    log = instance / "web.log"
    command = (
        procfile_command("web")
        if profile == "prod"
        else [sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}",
              "--worker-class", "gthread", "--workers", "1", "--threads", "8"]
    )  # fmt: skip
    web = start(command, {**env, "PORT": str(port), "VCPAY_WEB_HOST": "127.0.0.1"}, log)
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: answers(f"{url}/healthz"), 60):
        stop(web)
        raise SystemExit(f"vcpay's web server did not start; see {log}")
    return web, url


def worker_and_beat(env: dict, instance: Path, profile: str) -> list[list[str]]:
    """The Celery processes that apply decisions: one solo worker and beat as `make run`'s
    embedded shape, or deploy/Procfile's two workers and beat (profile "prod": Redis broker,
    beat under its Redis lock)."""
    if profile == "prod":
        workers = [procfile_command("worker", "--hostname", f"worker{n}@%h") for n in (1, 2)]
        return [*workers, procfile_command("beat")]
    celery = [sys.executable, "-m", "celery", "-A", "workers.main"]
    worker = [*celery, "worker", "--pool", "solo", "--without-mingle", "--without-gossip",
              "--loglevel", "INFO"]  # fmt: skip
    return [worker, [*celery, "beat", "--schedule", str(instance / "beat"), "--loglevel", "INFO"]]


def started_and_polled(log: Path, workers: int) -> bool:
    text = log.read_text(errors="replace")
    polled = re.search(r"Task vcpay\.enablement\.poll_service_desk\[[^]]+\] succeeded", text)
    return text.count(" ready.") >= workers and polled is not None


def decision_latency(
    database_url: str,
    standin: JiraControl,
    poll_seconds: int,
    rounds: int,
    webhook: str = "",
    profile: str = "run",
) -> dict:
    """Approve in Jira, then wait for a real worker (driven by beat) to enable the clinic.
    With ``webhook`` (the secret), the stand-in also posts its signed webhook to vcpay's web
    server, which queues a look at that one request for the worker."""
    instance = Path(tempfile.mkdtemp(prefix="vcpay-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCPAY_")}
    env.update(
        VCPAY_INSTANCE_PATH=str(instance),
        VCPAY_DATABASE_URL=database_url,
        VCPAY_JIRA_URL=standin.base,
        VCPAY_JIRA_POLL_SECONDS=str(poll_seconds),
        VCPAY_SMTP_PORT="1",  # emails wait in the outbox; not what is measured here
    )
    if profile == "prod":
        env.update(
            VCPAY_CELERY_BROKER_URL=PROD_BROKER_URL,
            VCPAY_REDIS_URL=PROD_REDIS_URL,
            VCPAY_BEAT_LOCK="true",
        )
        for url in (PROD_BROKER_URL, PROD_REDIS_URL):
            redis.Redis.from_url(url).flushdb()
    worker_log = (instance / "worker.log").open("wb")
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT)
        for command in worker_and_beat(env, instance, profile)
    ]
    latencies = []
    try:
        if webhook:
            env["VCPAY_JIRA_WEBHOOK_SECRET"] = webhook  # the server signs as the stand-in does
            web, url = serve_webhooks(env, instance, profile)
            processes.append(web)
            target = {"url": f"{url}/webhooks/jira", "secret": webhook}
            standin.put("webhooks", target)
        raised = standin.requests()
        # Decisions are timed from a running product, not from its start: every worker ready
        # and one poll done (the first settles the cursor), however slowly they started.
        workers = len(processes) - 1 - bool(webhook)
        log = instance / "worker.log"
        if not wait_until(lambda: started_and_polled(log, workers), 120):
            raise SystemExit(f"the workers and beat did not start and poll; see {log}")
        time.sleep(poll_seconds + 2)
        for issue in raised[:rounds]:
            time.sleep(poll_seconds * 0.37)  # decisions land anywhere in the interval
            standin.decide(issue["key"], "approve")
            decided = time.perf_counter()
            while time.perf_counter() - decided < poll_seconds + 30:
                db.session.expire_all()
                request = db.session.scalar(
                    db.select(EnablementRequest).filter_by(jira_key=issue["key"])
                )
                approved = request.state == RequestState.APPROVED
                db.session.rollback()  # hold no snapshot (or lock) between reads
                if approved:
                    latencies.append(time.perf_counter() - decided)
                    break
                time.sleep(0.02)  # fine enough to time the webhook path
            else:
                latencies.append(float("inf"))
        answers = [a["status_code"] for a in standin.webhooks()["attempts"]]
    finally:
        standin.send_webhooks_to("")
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
    worst = max(latencies)
    # With the webhook, every delivery must have been taken, or the figures are polling's.
    webhooks_taken = not webhook or (bool(answers) and all(a in (200, 202) for a in answers))
    return {
        "webhook": bool(webhook),
        "webhook_answers": answers if webhook else [],
        "poll_interval_seconds": poll_seconds,
        "decisions": len(latencies),
        "seconds_to_enable": [round(s, 2) for s in latencies],
        "worst_seconds": round(worst, 2),
        "goal_seconds": poll_seconds + 5,
        "goal_met": worst <= poll_seconds + 5 and webhooks_taken,
        "log": str(instance / "worker.log"),
        "profile": profile,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument(
        "--profile", choices=("run", "prod"), default="run",
        help="decisions applied by `make run`'s worker and beat, or by deploy/Procfile's "
        "(two workers, beat under its Redis lock; needs a PostgreSQL --database-url)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.profile == "prod" and not (args.database_url or "").startswith("postgresql"):
        parser.error("--profile prod needs a PostgreSQL --database-url, as production has")
    sizes = (10, 100) if args.quick else (10, 100, 1000)
    changes = (0, 5) if args.quick else (0, 5, 50)
    database_url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite"

    base, server = start_jira_standin()
    standin = JiraControl(base, timeout=30)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "CELERY_BROKER_URL": "memory://",
            "JIRA_URL": base,
            "JIRA_TIMEOUT_SECONDS": 30.0,
        }
    )
    results = []
    try:
        with app.app_context():
            db.create_all()
            standin.bulk(50)
            baseline = baseline_search(standin)
            for size in sizes:
                for changed in changes:
                    if changed <= size:
                        results.append(one_scenario(app, standin, size, changed))
                        row = results[-1]
                        print(
                            f"open={size:5d} changed={changed:3d} "
                            f"poll={row['poll_seconds'] * 1000:8.1f} ms "
                            f"({row['poll_seconds'] / baseline:6.1f}x one search) "
                            f"calls={row['calls']} goal_met={row['goal_met']}"
                        )
            poll_seconds, rounds = (3, 2) if args.quick else (10, 5)
            latencies = {}
            for mode, secret in (("polling", ""), ("webhook", app.config["JIRA_WEBHOOK_SECRET"])):
                backlog(standin, rounds * 2)
                latencies[mode] = decision_latency(
                    database_url, standin, poll_seconds, rounds, secret, args.profile
                )
                print(
                    f"decision to enabled, {mode}: {latencies[mode]['seconds_to_enable']} s "
                    f"(goal <= {latencies[mode]['goal_seconds']} s) "
                    f"goal_met={latencies[mode]['goal_met']}"
                )
            latency = latencies["polling"]
            db.drop_all()
    finally:
        stop_jira_standin(server)

    summary = {
        "benchmark": "jira_poll",
        "when": utcnow().isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpu",
        "database": database_url.split(":")[0],
        "quick": args.quick,
        "profile": args.profile,
        "baseline_search_seconds": round(baseline, 5),
        "scenarios": results,
        "decision_latency": latency,
        "decision_latency_with_webhook": latencies["webhook"],
        "all_goals_met": all(r["goal_met"] for r in results)
        and all(m["goal_met"] for m in latencies.values()),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    profile = "-prod" if args.profile == "prod" else ""
    name = f"jira_poll-{summary['database']}{profile}{'-quick' if args.quick else ''}.json"
    (out / name).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
