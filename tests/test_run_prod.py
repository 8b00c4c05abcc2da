"""`make run-prod`: the production profile from one command, on PostgreSQL and Redis.

Run as a person runs it, with the secrets of their own it asks for: it creates the database,
runs the migrations once, then deploy/Procfile's two web instances, two workers and beat,
prints where they are, and stops them all with Ctrl-C. Without its secrets it starts nothing
and names each one to set.
"""

import json
import secrets
import signal
import subprocess
import time
import uuid
from contextlib import suppress

import pytest
import requests
import sqlalchemy as sa

from tests.processes import (
    ROOT,
    alive_in_sessions,
    free_port,
    port_open,
    product_environment,
    running,
    sessions_below,
    stop_group,
    wait_for,
)
from tests.services import postgres_admin_url, redis_url

pytestmark = [pytest.mark.worker, pytest.mark.timeout(240)]

# The suite runs in an installed venv: `install` is not remade (it would reinstall the lock
# into a venv other checkouts may share).
MAKE = ["make", "--no-print-directory", "-o", "install", "run-prod"]
OWN_SECRETS = {
    "VCPAY_SECRET_KEY": secrets.token_urlsafe(48),
    "VCPAY_STRIPE_SECRET_KEY": "sk_test_" + secrets.token_hex(12),
    "VCPAY_STRIPE_WEBHOOK_SECRET": "whsec_" + secrets.token_hex(12),
    "VCPAY_JIRA_API_TOKEN": secrets.token_hex(12),
    "VCPAY_JIRA_WEBHOOK_SECRET": secrets.token_hex(12),
}


def two_free_ports() -> int:
    """A port whose next one is free too: the two web instances'."""
    while True:
        port = free_port()
        if not port_open(port + 1) and port + 1 < 65536:
            return port


@pytest.fixture
def new_database_url():
    """The URL of a PostgreSQL database that does not exist yet; dropped afterwards."""
    admin = sa.engine.make_url(postgres_admin_url())
    url = admin.set(database=f"vcpay_run_prod_{uuid.uuid4().hex[:10]}")
    yield url.render_as_string(hide_password=False)
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with suppress(sa.exc.OperationalError), engine.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    engine.dispose()


def test_without_its_secrets_run_prod_starts_nothing_and_names_each(tmp_path):
    env = product_environment(VCPAY_INSTANCE_PATH=str(tmp_path))
    answer = subprocess.run(
        MAKE, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert answer.returncode != 0
    for name in OWN_SECRETS:
        assert f"export {name}=..." in answer.stderr
    assert "honcho" not in answer.stdout


def test_run_prod_starts_the_procfiles_processes_and_ctrl_c_stops_them(tmp_path, new_database_url):
    port = two_free_ports()
    redis = redis_url()
    env = product_environment(
        VCPAY_INSTANCE_PATH=str(tmp_path),
        VCPAY_DATABASE_URL=new_database_url,
        VCPAY_CELERY_BROKER_URL=redis,
        VCPAY_REDIS_URL=redis,
        WEB_PORT=str(port),
        **OWN_SECRETS,
    )
    log = tmp_path / "run-prod.log"
    with running(MAKE, env, log) as process:
        for web in (port, port + 1):
            wait_for(lambda web=web: f"http://127.0.0.1:{web}" in log.read_text(), 60,
                     "run-prod to print its addresses", log)  # fmt: skip
        for web in (port, port + 1):
            wait_for(lambda web=web: ready(web), 90, f"the web instance on {web}", log)
        printed = log.read_text()
        # The database created, migrated once, and only then the others started.
        assert "(created)" in printed
        migrated = printed.index("release.1 stopped (rc=0)")
        for name in ("web.1", "web.2", "worker.1", "worker.2", "beat.1"):
            assert printed.index(f"{name} started") > migrated, name
        assert "web.3" not in printed and "beat.2" not in printed
        assert OWN_SECRETS["VCPAY_SECRET_KEY"] not in printed
        sessions = sessions_below(process.pid)
        stop_group(process, signal.SIGINT)  # Ctrl-C
        deadline = time.monotonic() + 30
        while (left := alive_in_sessions(sessions)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert left == {}


def ready(port: int) -> bool:
    """The instance answers /readyz with everything ok, a worker's heartbeat included."""
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
    except requests.RequestException:
        return False
    with suppress(json.JSONDecodeError):
        report = answer.json()
        return answer.status_code == 200 and report.get("last_worker_heartbeat") is not None
    return False
