"""Every task beat schedules is one a worker knows: a misspelt name would be sent, never run."""

import json
import subprocess
import sys

from tests.processes import ROOT, product_environment

# What ``celery -A workers.main worker`` does before it consumes: build the app from the
# factory and import the task modules it is told to. Run in a process of its own, so no
# module this test suite imported can register a task the worker would not.
AS_A_WORKER_LOADS_IT = """
import json
from workers.main import celery_app
celery_app.loader.import_default_modules()
scheduled = {name: entry["task"] for name, entry in celery_app.conf.beat_schedule.items()}
print(json.dumps({"scheduled": scheduled, "registered": sorted(celery_app.tasks)}))
"""


def schedule_and_tasks(tmp_path) -> tuple[dict[str, str], set[str]]:
    env = product_environment(VCPAY_INSTANCE_PATH=str(tmp_path))
    answer = subprocess.run(
        [sys.executable, "-c", AS_A_WORKER_LOADS_IT],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    loaded = json.loads(answer.stdout.strip().splitlines()[-1])
    return loaded["scheduled"], set(loaded["registered"])


def unregistered(scheduled: dict[str, str], registered: set[str]) -> dict[str, str]:
    return {entry: task for entry, task in scheduled.items() if task not in registered}


def test_every_task_in_beats_schedule_is_registered_with_the_worker(tmp_path):
    scheduled, registered = schedule_and_tasks(tmp_path)
    assert set(scheduled) >= {
        "record-heartbeat",
        "poll-service-desk",
        "sweep-service-desk",
        "resend-pending-email",
        "reconcile-payment-requests",
        "sweep-stripe-events",
        "refresh-payouts",
        "detach-old-saved-cards",
    }
    assert unregistered(scheduled, registered) == {}
    # The check itself: one letter wrong and the entry is reported.
    misspelt = {**scheduled, "reconcile-payment-requests": "vcpay.payments.reconcile_payment"}
    assert unregistered(misspelt, registered) == {
        "reconcile-payment-requests": "vcpay.payments.reconcile_payment"
    }
