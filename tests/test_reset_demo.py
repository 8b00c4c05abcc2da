"""`flask --app wsgi reset-demo` starts the demo afresh, and only the local demo, stopped;
`seed-demo --migrate` makes the demo from nothing in one process, as `make run` does.

The command runs as a person runs it, in its own process with an instance folder of its own.
"""

import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import ROOT, free_port, product_environment
from vcpay.people.demo_reset import ResetRefused, refuse_unless_local_demo

DEMO_EMAILS = {
    "manager@harbourside.example",
    "orgadmin@harbourside.example",
    "clinicadmin@harbourside.example",
    "clinician@harbourside.example",
}


def flask(
    instance: Path, *arguments: str, answer: str = "", **settings: str
) -> subprocess.CompletedProcess:
    stopped = {  # ports nothing listens on: the demo is stopped
        name: f"http://127.0.0.1:{free_port()}"
        for name in (
            "VCPAY_PUBLIC_URL",
            "VCPAY_JIRA_URL",
            "VCPAY_MAIL_CATCHER_URL",
            "VCPAY_STRIPE_API_BASE",
        )
    }
    env = product_environment(VCPAY_INSTANCE_PATH=str(instance), **{**stopped, **settings})
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *arguments],
        cwd=ROOT,
        env=env,
        input=answer,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rows(instance: Path, query: str) -> list[tuple]:
    with sqlite3.connect(instance / "vcpay.sqlite") as database:
        return database.execute(query).fetchall()


@pytest.fixture
def used_demo(tmp_path) -> Path:
    """A demo that has been used: a new person, the physiotherapy clinic switched on, and the
    files `make run` leaves (the stand-ins' state, caught email, queued tasks, the past)."""
    instance = tmp_path / "instance"
    # On a folder with nothing in it yet, the reset makes the demo as `make run` would.
    first = flask(instance, "reset-demo", "--yes")
    assert first.returncode == 0, first.stderr
    with sqlite3.connect(instance / "vcpay.sqlite") as database:
        database.execute(
            "INSERT INTO users (email, name, password_hash, is_disabled, created_at) "
            "VALUES ('new@harbourside.example', 'New', 'x', 0, CURRENT_TIMESTAMP)"
        )
        database.execute(
            "UPDATE clinics SET gateway_enabled_at = CURRENT_TIMESTAMP "
            "WHERE name = 'Harbourside Physiotherapy'"
        )
    for name in ("jira-standin.json", "stripe-standin.json", "demo-history.json"):
        (instance / name).write_text("{}")
    (instance / "celerybeat-schedule").write_bytes(b"beat")
    (instance / "mail").mkdir()
    (instance / "mail" / "receipt.eml").write_text("Subject: Your receipt\n\nA$85.00")
    (instance / "broker" / "queues").mkdir(parents=True, exist_ok=True)
    (instance / "broker" / "queues" / "task.msg").write_text("{}")
    return instance


def test_reset_demo_deletes_the_demos_data_and_seeds_it_again(used_demo):
    secret_key = (used_demo / "secret_key").read_text()

    reset = flask(used_demo, "reset-demo", "--yes")

    assert reset.returncode == 0, reset.stderr
    assert "Demo data ready: Harbourside Health" in reset.stdout
    for name in ("jira-standin.json", "stripe-standin.json", "demo-history.json", "mail"):
        assert not (used_demo / name).exists(), name
    assert not (used_demo / "celerybeat-schedule").exists()
    assert not (used_demo / "broker" / "queues" / "task.msg").exists()
    assert (used_demo / "secret_key").read_text() == secret_key
    assert {email for (email,) in rows(used_demo, "SELECT email FROM users")} == DEMO_EMAILS
    gateways = rows(used_demo, "SELECT name, gateway_enabled_at IS NOT NULL FROM clinics")
    # As `make run` seeds it: the GP clinic on, the physiotherapy clinic off to be requested.
    assert sorted(gateways) == [("Harbourside GP Clinic", 1), ("Harbourside Physiotherapy", 0)]
    # The migrations made the database: it is at their head.
    assert rows(used_demo, "SELECT count(*) FROM alembic_version") == [(1,)]


def test_reset_demo_asks_first_and_keeps_everything_when_told_no(used_demo):
    answer = flask(used_demo, "reset-demo", answer="n\n")
    assert answer.returncode != 0
    assert "Delete the demo's data in" in answer.stdout
    assert (used_demo / "stripe-standin.json").exists()
    assert len(rows(used_demo, "SELECT email FROM users")) == 5


def test_reset_demo_refuses_a_database_that_is_not_the_demos(used_demo, tmp_path):
    elsewhere = f"sqlite:///{tmp_path / 'someone-elses.sqlite'}"

    refused = flask(used_demo, "reset-demo", "--yes", VCPAY_DATABASE_URL=elsewhere)

    assert refused.returncode != 0
    assert "resets only the demo's own database" in refused.stderr
    assert "someone-elses" not in refused.stderr  # a database URL may hold a password
    assert (used_demo / "stripe-standin.json").exists()
    assert len(rows(used_demo, "SELECT email FROM users")) == 5


def test_reset_demo_refuses_while_make_run_is_running(used_demo):
    with socket.socket() as web:
        web.bind(("127.0.0.1", 0))
        web.listen()
        url = f"http://127.0.0.1:{web.getsockname()[1]}"

        refused = flask(used_demo, "reset-demo", "--yes", VCPAY_PUBLIC_URL=url)

    assert refused.returncode != 0
    assert f"Something still answers at {url}: stop `make run` first" in refused.stderr
    assert (used_demo / "mail" / "receipt.eml").exists()


def test_reset_demo_refuses_in_production(used_demo):
    refused = flask(
        used_demo,
        "reset-demo",
        "--yes",
        VCPAY_ENV="production",
        # What production needs to start at all, so that reset-demo itself answers.
        VCPAY_SECRET_KEY="k" * 40,
        VCPAY_STRIPE_SECRET_KEY="sk_test_reset_demo_check",
        VCPAY_STRIPE_WEBHOOK_SECRET="whsec_reset_demo_check",
        VCPAY_JIRA_API_TOKEN="reset-demo-check",
        VCPAY_JIRA_WEBHOOK_SECRET="reset-demo-check",
    )

    assert refused.returncode != 0
    assert "never runs with VCPAY_ENV=production" in refused.stderr
    assert len(rows(used_demo, "SELECT email FROM users")) == 5


def local_demo(instance: str, **changes: str) -> dict:
    return {
        "ENVIRONMENT": "development",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance}/vcpay.sqlite",
        "PUBLIC_URL": f"http://127.0.0.1:{free_port()}",
        "JIRA_URL": f"http://127.0.0.1:{free_port()}",
        "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
        "MAIL_CATCHER_URL": f"http://127.0.0.1:{free_port()}",
        **changes,
    }


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"ENVIRONMENT": "production"}, "VCPAY_ENV=production"),
        (
            {"SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://vcpay:secret@127.0.0.1/vcpay"},
            "VCPAY_DATABASE_URL names another",
        ),
        ({"STRIPE_API_BASE": "https://api.stripe.com"}, "STRIPE_API_BASE is https://api."),
        ({"JIRA_URL": "https://clinic.atlassian.net"}, "JIRA_URL is https://clinic."),
    ],
)
def test_only_the_local_demo_is_reset(tmp_path, changes, says):
    with pytest.raises(ResetRefused, match=says) as refused:
        refuse_unless_local_demo(local_demo(str(tmp_path), **changes), str(tmp_path))
    assert "secret" not in str(refused.value)


def test_the_local_demo_stopped_may_be_reset(tmp_path):
    refuse_unless_local_demo(local_demo(str(tmp_path)), str(tmp_path))


def test_make_runs_seed_migrates_first_in_the_same_process(tmp_path):
    instance = tmp_path / "instance"

    seeded = flask(instance, "seed-demo", "--migrate")
    again = flask(instance, "seed-demo", "--migrate")

    assert seeded.returncode == 0, seeded.stderr
    assert again.returncode == 0, again.stderr
    assert {email for (email,) in rows(instance, "SELECT email FROM users")} == DEMO_EMAILS
    assert rows(instance, "SELECT count(*) FROM alembic_version") == [(1,)]
