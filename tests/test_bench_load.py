"""bench/load.py works end to end: a benchmark, not a timed test, so only its shortest mode
(``--smoke``: the production profile started, one short step of two clinicians and their
patients) runs here, to prove the script drives the mix and ends with its JSON summary. The
figures it prints are not judged: the machine running the suite is busy with other tests.

The script recreates and drops its scratch database (a fresh name from the suite's
PostgreSQL server) and flushes Redis databases 9 and 10 of the suite's Redis server, which
no test uses.
"""

import json
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from tests.processes import ROOT
from tests.services import redis_url, scratch_postgres_database

pytestmark = [pytest.mark.worker, pytest.mark.timeout(240)]

STEP_KEYS = {
    "clinicians", "throughput_rps", "errors", "routes", "web_cpu_cores", "web_rss_mb",
    "worker_rss_mb", "payments_confirmed", "jira_polls",
}  # fmt: skip


def test_the_load_benchmark_runs_on_the_production_profile_and_ends_with_its_summary():
    redis = urlsplit(redis_url())
    with scratch_postgres_database() as database_url:
        finished = subprocess.run(
            [sys.executable, "bench/load.py", "--smoke", "--database-url", database_url,
             "--redis", f"redis://{redis.netloc}"],
            cwd=ROOT, capture_output=True, text=True, timeout=200, check=False,
        )  # fmt: skip
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    summary = json.loads(finished.stdout.strip().splitlines()[-1])
    assert summary["benchmark"] == "load" and summary["mode"] == "smoke"
    assert {"steps", "goal", "goal_met", "payments", "machine"} <= set(summary)
    [step] = summary["steps"]
    assert set(step) >= STEP_KEYS
    # The mix ran: the clinicians' pages were served and measured by route name.
    assert {"calls.index", "calls.call", "calls.start"} <= set(step["routes"])
    assert step["web_rss_mb"] > 0 and step["worker_rss_mb"] > 0
    assert all(summary["stopped_cleanly"].values()), summary["stopped_cleanly"]
