"""deploy/: the Procfile, the compose file, nginx and gunicorn's settings describe one shape.

The compose file runs each process with the Procfile's command, the migrations as a one-off
the others wait for, one beat, web instances that answer a health check, and no secret of its
own: each comes from the environment. The production profile's database pools and beat lock
are checked here too; tests/test_scale_out.py runs the same commands against each other.
"""

import importlib.util
import os
import re
import runpy
import subprocess

import pytest
import yaml
from redbeat import RedBeatScheduler
from redis import exceptions as redis_errors

from sandbox.procfile import procfile
from tests.processes import ROOT
from vcpay.config import (
    SANDBOX_JIRA_API_TOKEN,
    SANDBOX_JIRA_WEBHOOK_SECRET,
    SANDBOX_STRIPE_SECRET_KEY,
    SANDBOX_STRIPE_WEBHOOK_SECRET,
    SETTINGS,
    engine_options,
    load_settings,
)
from workers import BEAT_LOCK_SECONDS, beat_settings, celery_settings
from workers.beat import LockedScheduler

DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
# Each compose service of vcpay's image, and the Procfile process whose command it runs.
SAME_AS = {"migrate": "release", "web": "web", "worker": "worker", "beat": "beat"}
PUBLISHED = (
    SANDBOX_STRIPE_SECRET_KEY,
    SANDBOX_STRIPE_WEBHOOK_SECRET,
    SANDBOX_JIRA_API_TOKEN,
    SANDBOX_JIRA_WEBHOOK_SECRET,
)
REQUIRED = re.compile(r"\$\{[A-Z_]+:\?[^}]*\}")


def test_the_procfile_names_the_migration_one_off_and_each_process():
    assert set(procfile()) == {"release", "web", "worker", "beat"}
    assert procfile()["release"] == ["flask", "--app", "wsgi", "db", "upgrade"]
    assert procfile()["web"][:3] == ["gunicorn", "--config", "deploy/gunicorn.conf.py"]


@pytest.mark.parametrize("service", sorted(SAME_AS))
def test_compose_runs_the_procfiles_command_for_each_process(service):
    assert SERVICES[service]["command"] == procfile()[SAME_AS[service]]
    assert SERVICES[service]["image"] == "vcpay:local"


def test_the_migration_is_a_one_off_that_web_workers_and_beat_wait_for():
    assert SERVICES["migrate"]["restart"] == "no"
    for service in ("web", "worker", "beat"):
        after = SERVICES[service]["depends_on"]["migrate"]
        assert after == {"condition": "service_completed_successfully"}, service
    assert SERVICES["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_web_and_workers_scale_and_beat_is_one():
    assert SERVICES["web"]["deploy"]["replicas"] == "${VCPAY_WEB_REPLICAS:-2}"
    assert SERVICES["worker"]["deploy"]["replicas"] == "${VCPAY_WORKER_REPLICAS:-2}"
    assert SERVICES["beat"]["deploy"]["replicas"] == 1
    assert {"postgres", "redis", "proxy"} <= set(SERVICES)


def test_health_checks_ask_vcpay_itself():
    web = " ".join(SERVICES["web"]["healthcheck"]["test"])
    proxy = " ".join(SERVICES["proxy"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in web
    assert "/readyz" in proxy
    assert SERVICES["proxy"]["depends_on"]["web"] == {"condition": "service_healthy"}


def test_no_secret_is_written_in_the_compose_file():
    text = (DEPLOY / "compose.yaml").read_text()
    assert not any(secret in text for secret in PUBLISHED)
    secret_names = {s.env for s in SETTINGS if s.secret}
    for service in SAME_AS:
        environment = SERVICES[service]["environment"]
        assert environment["VCPAY_ENV"] == "production"
        for name in secret_names & set(environment):
            value = str(environment[name])
            # A secret is required from the environment, or is an address with no password.
            assert REQUIRED.search(value) or "@" not in value, (service, name)
        for name in ("VCPAY_SECRET_KEY", "VCPAY_STRIPE_SECRET_KEY", "VCPAY_JIRA_API_TOKEN"):
            assert REQUIRED.fullmatch(environment[name]), (service, name)
    postgres = SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert REQUIRED.fullmatch(postgres)


def test_the_image_bakes_in_no_secret():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    secret_names = {s.env for s in SETTINGS if s.secret}
    assert not any(name in dockerfile for name in secret_names)
    assert "instance" in (DEPLOY / "Dockerfile.dockerignore").read_text().split()


def nginx_stream_location() -> tuple[str, str]:
    conf = (DEPLOY / "nginx.conf").read_text()
    match = re.search(r"location ~ (\S+) \{([^}]*)\}", conf)
    return match[1], match[2]


def test_the_proxy_passes_call_streams_on_unbuffered_and_keeps_them_open():
    pattern, block = nginx_stream_location()
    for stream in ("/calls/12/events", "/join/abc_DEF-1/events"):
        assert re.match(pattern, stream), stream
    for page in ("/calls/12", "/calls/12/events/x", "/join/abc/pay"):
        assert not re.match(pattern, page), page
    assert "proxy_buffering off;" in block
    timeout = re.search(r"proxy_read_timeout (\d+)([smh]);", block)
    seconds = int(timeout[1]) * {"s": 1, "m": 60, "h": 3600}[timeout[2]]
    stream_max = next(s.default for s in SETTINGS if s.env == "VCPAY_STREAM_MAX_SECONDS")
    assert seconds > stream_max


def gunicorn_settings(monkeypatch, **environment) -> dict:
    for name in ("PORT", "VCPAY_WEB_HOST", "VCPAY_WEB_WORKERS", "VCPAY_WEB_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("VCPAY_WEB_WORKER_CLASS", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))


def test_gunicorns_defaults_are_the_documented_settings(monkeypatch):
    config = gunicorn_settings(monkeypatch)
    defaults = {s.env: s.default for s in SETTINGS}
    assert config["bind"] == f"{defaults['VCPAY_WEB_HOST']}:8000"
    assert config["workers"] == defaults["VCPAY_WEB_WORKERS"]
    assert config["threads"] == defaults["VCPAY_WEB_THREADS"]
    assert config["worker_class"] == defaults["VCPAY_WEB_WORKER_CLASS"] == "gthread"
    assert config["logger_class"] == "vcpay.access_log.MaskedAccessLogger"
    assert config["accesslog"] == "-"
    assert 0 < config["graceful_timeout"] < 30


def test_gunicorn_takes_its_settings_from_the_environment(monkeypatch):
    config = gunicorn_settings(
        monkeypatch, PORT="8123", VCPAY_WEB_HOST="127.0.0.1", VCPAY_WEB_WORKERS="3",
        VCPAY_WEB_THREADS="64",
    )  # fmt: skip
    assert (config["bind"], config["workers"], config["threads"]) == ("127.0.0.1:8123", 3, 64)
    assert config["worker_class"] == "gthread"


def test_under_gevent_streams_take_connections_not_threads(monkeypatch):
    config = gunicorn_settings(
        monkeypatch, VCPAY_WEB_WORKER_CLASS="gevent", VCPAY_WEB_CONNECTIONS="12000",
        VCPAY_WEB_THREADS="64",
    )  # fmt: skip
    assert (config["worker_class"], config["worker_connections"]) == ("gevent", 12000)
    assert "threads" not in config  # gevent would ignore it; its absence says so
    assert config["preload_app"] is False  # patched before the app is imported


POSTGRES = "postgresql+psycopg://vcpay:s3cret-pw@db.internal:5432/vcpay"


def settings(tmp_path, **environment: str) -> dict:
    return load_settings(str(tmp_path), environment)


def test_postgresql_pools_are_sized_from_the_settings_and_pinged(tmp_path):
    options = engine_options(
        settings(
            tmp_path, VCPAY_DATABASE_URL=POSTGRES, VCPAY_DATABASE_POOL_SIZE="12",
            VCPAY_DATABASE_MAX_OVERFLOW="3", VCPAY_DATABASE_POOL_RECYCLE_SECONDS="600",
        )
    )  # fmt: skip
    assert options == {
        "pool_pre_ping": True, "hide_parameters": True,
        "pool_size": 12, "max_overflow": 3, "pool_recycle": 600,
    }  # fmt: skip
    defaults = engine_options(settings(tmp_path, VCPAY_DATABASE_URL=POSTGRES))
    assert (defaults["pool_size"], defaults["max_overflow"], defaults["pool_recycle"]) == (
        5, 10, 1800,
    )  # fmt: skip


def test_sqlite_keeps_its_own_pool(tmp_path):
    options = engine_options(settings(tmp_path, VCPAY_DATABASE_POOL_SIZE="12"))
    assert options == {"pool_pre_ping": True, "hide_parameters": True}


def test_a_negative_pool_size_names_the_setting(tmp_path):
    with pytest.raises(ValueError, match="VCPAY_DATABASE_POOL_SIZE"):
        settings(tmp_path, VCPAY_DATABASE_POOL_SIZE="-1")


def test_with_redis_beat_holds_a_lock_of_its_deployments_own(tmp_path):
    config = settings(
        tmp_path, VCPAY_DATABASE_URL=POSTGRES, VCPAY_REDIS_URL="redis://r:6379/1",
        VCPAY_BEAT_LOCK="true",
    )  # fmt: skip
    beat = celery_settings(config, str(tmp_path))
    assert beat["beat_scheduler"] == "workers.beat:LockedScheduler"
    assert beat["redbeat_redis_url"] == "redis://r:6379/1"
    assert beat["redbeat_lock_timeout"] == BEAT_LOCK_SECONDS
    prefix = beat["redbeat_key_prefix"]
    assert "s3cret" not in prefix and prefix.startswith("vcpay:beat:")
    # Another database is another deployment: its beat never waits for this one's.
    other = settings(tmp_path, VCPAY_DATABASE_URL=POSTGRES.replace("/vcpay", "/other"),
                     VCPAY_REDIS_URL="redis://r:6379/1", VCPAY_BEAT_LOCK="true")  # fmt: skip
    assert beat_settings(other)["redbeat_key_prefix"] != prefix
    # The same database with its password changed is the same deployment.
    rotated = settings(tmp_path, VCPAY_DATABASE_URL=POSTGRES.replace("s3cret-pw", "new"),
                       VCPAY_REDIS_URL="redis://r:6379/1", VCPAY_BEAT_LOCK="true")  # fmt: skip
    assert beat_settings(rotated)["redbeat_key_prefix"] == prefix


def test_the_embedded_demo_keeps_celerys_own_scheduler(tmp_path):
    beat = celery_settings(settings(tmp_path), str(tmp_path))
    assert "beat_scheduler" not in beat and beat_settings(settings(tmp_path)) == {}
    # Redis alone does not lock: the deployment asks for one beat at a time.
    unlocked = settings(tmp_path, VCPAY_DATABASE_URL=POSTGRES, VCPAY_REDIS_URL="redis://r:6379/1")
    assert beat_settings(unlocked) == {}


def prepare():
    spec = importlib.util.spec_from_file_location("deploy_prepare", DEPLOY / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PRODUCTION = {
    "VCPAY_ENV": "production",
    "VCPAY_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/vcpay",
    "VCPAY_REDIS_URL": "redis://127.0.0.1:6379/1",
}
OWN_SECRETS = {
    "VCPAY_SECRET_KEY": "k" * 20 + "Q7wz" * 5,
    "VCPAY_STRIPE_SECRET_KEY": "sk_test_own",
    "VCPAY_STRIPE_WEBHOOK_SECRET": "whsec_own",
    "VCPAY_JIRA_API_TOKEN": "jira-own",
    "VCPAY_JIRA_WEBHOOK_SECRET": "jira-hook-own",
}


def test_run_prod_refuses_naming_every_secret_to_set(tmp_path):
    reason = prepare().refusal({**PRODUCTION, "VCPAY_INSTANCE_PATH": str(tmp_path)})
    for name in OWN_SECRETS:
        assert f"export {name}=..." in reason


def test_run_prod_refuses_a_published_secret(tmp_path):
    published = {**OWN_SECRETS, "VCPAY_STRIPE_SECRET_KEY": SANDBOX_STRIPE_SECRET_KEY}
    reason = prepare().refusal({**PRODUCTION, **published, "VCPAY_INSTANCE_PATH": str(tmp_path)})
    assert "VCPAY_STRIPE_SECRET_KEY is the value published" in reason


def test_run_prod_refuses_a_short_key_and_a_missing_redis(tmp_path):
    environ = {**PRODUCTION, **OWN_SECRETS, "VCPAY_INSTANCE_PATH": str(tmp_path)}
    assert prepare().refusal(environ) is None
    assert "too short" in prepare().refusal({**environ, "VCPAY_SECRET_KEY": "short-key"})
    assert "VCPAY_REDIS_URL" in prepare().refusal({**environ, "VCPAY_REDIS_URL": ""})
    sqlite = {**environ, "VCPAY_DATABASE_URL": "sqlite:///x.sqlite"}
    assert "PostgreSQL" in prepare().refusal(sqlite)


def test_run_prod_shows_addresses_without_their_passwords():
    shown = prepare().without_password("redis://:hunter2@cache:6379/0")
    assert shown == "redis://:***@cache:6379/0"


class Lock:
    """A stand-in for redis-py's lock: free or not, or Redis away."""

    def __init__(self, free: bool = False, error: Exception | None = None):
        self.free, self.error, self.taken = free, error, False

    def acquire(self, blocking: bool = True) -> bool:
        assert not blocking  # a beat's loop must not hang on it
        if self.error:
            raise self.error
        self.taken = self.free
        return self.free


def scheduler(monkeypatch, failure: Exception, lock: Lock) -> LockedScheduler:
    def tick(self, *args, **kwargs):
        raise failure

    monkeypatch.setattr(RedBeatScheduler, "tick", tick)
    beat = LockedScheduler.__new__(LockedScheduler)  # its Redis is the failure above
    beat.max_interval, beat.lock = 5, lock
    return beat


def test_beat_waits_out_a_redis_outage_instead_of_stopping(monkeypatch):
    beat = scheduler(monkeypatch, redis_errors.ConnectionError("Redis is away"), Lock())
    assert beat.tick() == 5
    assert scheduler(monkeypatch, redis_errors.TimeoutError("hung"), Lock()).tick() == 5


def test_a_lapsed_lock_is_taken_again_before_beat_sends_anything(monkeypatch):
    lapsed = redis_errors.LockNotOwnedError("Cannot extend a lock that's no longer owned")
    another_beat_has_it = Lock(free=False)
    assert scheduler(monkeypatch, lapsed, another_beat_has_it).tick() == 5
    assert not another_beat_has_it.taken
    free = Lock(free=True)
    assert scheduler(monkeypatch, lapsed, free).tick() == 0  # its next tick sends
    assert free.taken
    away = Lock(error=redis_errors.ConnectionError("still away"))
    assert scheduler(monkeypatch, lapsed, away).tick() == 5


def docker_compose(*arguments: str, **environment: str) -> subprocess.CompletedProcess:
    command = ["docker", "compose", "-f", str(DEPLOY / "compose.yaml"), *arguments]
    env = {"PATH": os.environ.get("PATH", ""), **environment}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_docker_compose_reads_the_file_and_asks_for_each_secret():
    """Where Docker's compose plugin is installed (it needs no daemon for this)."""
    try:
        installed = docker_compose("version").returncode == 0
    except FileNotFoundError:
        installed = False
    if not installed:
        pytest.skip("docker compose is not installed on this machine")
    required = set(REQUIRED.findall((DEPLOY / "compose.yaml").read_text()))
    values = {re.match(r"\$\{([A-Z_]+)", r)[1]: "set-for-the-check" for r in required}
    assert docker_compose("config", "--quiet", **values).returncode == 0
    missing = docker_compose("config", "--quiet", **{**values, "VCPAY_SECRET_KEY": ""})
    assert missing.returncode != 0 and "VCPAY_SECRET_KEY" in missing.stderr
