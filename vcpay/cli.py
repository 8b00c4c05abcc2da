"""Commands for ``flask --app wsgi ...``: demo data and the one-command demo."""

import json
import signal
import subprocess  # nosec B404  # the demo's own fixed commands, no shell
import sys
import time
import urllib.request
from datetime import datetime
from urllib.error import URLError
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import with_appcontext

from vcpay.database import utcnow
from vcpay.enablement.cli import poll_jira_command
from vcpay.extensions import db
from vcpay.health.tasks import record_heartbeat
from vcpay.links import LOCAL_HOSTS, is_local
from vcpay.people.demo import DEMO_PASSWORD, DEMO_PEOPLE, seed_demo
from vcpay.translations_cli import translations
from vcpay.webhooks.cli import stripe_events
from workers import is_embedded_broker

STARTUP_SECONDS = 60


@click.command("seed-demo")
@click.option(
    "--gateway/--no-gateway",
    default=True,
    show_default=True,
    help="Switch the Payment Gateway on for the GP clinic (the other stays off, to request).",
)
@with_appcontext
def seed_demo_command(gateway: bool) -> None:
    """Create the demo organisation, clinics and people (safe to run again)."""
    organisation = seed_demo(enable_gateway=gateway)
    db.session.commit()
    click.echo(f"Demo data ready: {organisation.name}, {len(organisation.clinics)} clinics.")
    for clinic in organisation.clinics:
        state = "on" if clinic.gateway_enabled else "off"
        click.echo(f"  {clinic.name}: Payment Gateway {state}")


def _bind_address(public_url: str) -> str:
    parts = urlsplit(public_url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 5000}"


def standin_processes(config) -> dict[str, list[str]]:
    """The stand-ins for Jira and the mail server, when vcpay is pointed at this machine."""
    python = sys.executable
    instance = current_app.instance_path
    processes = {}
    if is_local(config["JIRA_URL"]):
        jira = urlsplit(config["JIRA_URL"])
        processes["jira"] = [
            python, "-m", "sandbox.jira",
            "--host", jira.hostname, "--port", str(jira.port or 80),
            "--public-url", config["JIRA_URL"],
            "--state-file", f"{instance}/jira-standin.json",
            "--webhook-url", f"{config['PUBLIC_URL'].rstrip('/')}/webhooks/jira",
        ]  # fmt: skip
    if is_local(config["STRIPE_API_BASE"]):
        processes["stripe"] = stripe_standin_command(config, instance)
    if config["SMTP_HOST"] in LOCAL_HOSTS:
        catcher = urlsplit(config["MAIL_CATCHER_URL"])
        processes["mail"] = [
            python, "-m", "sandbox.mail",
            "--host", config["SMTP_HOST"], "--smtp-port", str(config["SMTP_PORT"]),
            "--http-port", str(catcher.port or 80),
            "--folder", f"{instance}/mail",
        ]  # fmt: skip
    return processes


def stripe_standin_command(config, instance: str) -> list[str]:
    """The Stripe stand-in, knowing vcpay as its Connect platform and webhook endpoint.

    It reads the platform key and webhook secret from the environment it inherits, where
    vcpay reads them (or both use the same sandbox defaults): never from the command line.
    """
    api = urlsplit(config["STRIPE_API_BASE"])
    public = config["PUBLIC_URL"].rstrip("/")
    return [
        sys.executable, "-m", "sandbox.stripe",
        "--host", api.hostname, "--port", str(api.port or 80),
        "--public-url", config["STRIPE_API_BASE"].rstrip("/"),
        "--state-file", f"{instance}/stripe-standin.json",
        "--client-id", config["STRIPE_CLIENT_ID"],
        "--redirect-uri", f"{public}/client-payments/stripe/callback",
        "--webhook-url", f"{public}/webhooks/stripe",
        "--demo-accounts",
    ]  # fmt: skip


def demo_processes(config) -> dict[str, list[str]]:
    """The command line of each process the demo runs, by name."""
    python = sys.executable
    celery = [python, "-m", "celery", "-A", "workers.main"]
    worker = [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2"]
    if is_embedded_broker(config["CELERY_BROKER_URL"]):
        # Mingle and gossip need a broadcast-capable broker.
        worker += ["--without-mingle", "--without-gossip"]
    schedule = f"{current_app.instance_path}/celerybeat-schedule"
    return {
        **standin_processes(config),
        "web": [
            python,
            "-m",
            "gunicorn",
            "wsgi:app",
            "--bind",
            _bind_address(config["PUBLIC_URL"]),
            "--worker-class",
            "gthread",
            "--workers",
            "2",
            # Each open call screen holds a thread for its event stream (waiting, not
            # working). Streams take at most WEB_THREADS less STREAM_RESERVED_THREADS of
            # them (vcpay.calls.live), so pages, sign-in and webhooks always find one.
            "--threads",
            str(config["WEB_THREADS"]),
            # Open call streams would hold a stop for the whole default grace.
            "--graceful-timeout",
            "5",
            "--access-logfile",
            "-",
            "--logger-class",
            "vcpay.access_log.MaskedAccessLogger",
        ],
        "worker": worker,
        "beat": [*celery, "beat", "--loglevel", "INFO", "--schedule", schedule],
    }


def _heartbeat_since(url: str, started: datetime) -> bool:
    """Whether the web server answers and the worker has recorded a beat since ``started``."""
    try:
        # vcpay's own PUBLIC_URL, http or https: no file: or custom scheme reaches here.
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310  # nosec B310
            beat = json.load(response).get("last_worker_heartbeat")
    except (URLError, OSError, ValueError):
        return False
    return beat is not None and datetime.fromisoformat(beat) >= started


def _wait_until_serving(url: str, processes: dict[str, subprocess.Popen]) -> bool:
    """Wait for the web server, beat and the worker: a heartbeat needs all three."""
    started = utcnow().replace(microsecond=0)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes.values()):
            return False
        if _heartbeat_since(url, started):
            return True
        time.sleep(0.5)
    return False


def _print_welcome(url: str, processes: dict) -> None:
    config = current_app.config
    click.echo("")
    click.secho(f"vcpay is running at {url}", bold=True)
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for person in DEMO_PEOPLE:
        click.echo(f"  {person.email:<34} {person.role}")
    if "jira" in processes:
        click.echo(f"Service desk stand-in (approve or decline requests): {config['JIRA_URL']}/")
    if "stripe" in processes:
        click.echo(
            f"Stripe stand-in (test accounts and their dashboards): {config['STRIPE_API_BASE']}/"
        )
    if "mail" in processes:
        click.echo(f"Email vcpay sent (local catcher): {config['MAIL_CATCHER_URL']}/")
    click.echo(
        "To take a payment: as clinicadmin@… link the GP clinic's Stripe account (Client "
        "Payments, Go to Stripe); as clinician@… open Calls, start a call, open the patient's "
        "link in another browser window, then Apps & Tools, Request Payment; pay with card "
        "4242 4242 4242 4242."
    )
    click.echo("Press Ctrl-C to stop the web server, the worker and beat.")
    click.echo("")


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    # A second Ctrl-C must not interrupt the stopping and leave processes behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


class StopRequested(Exception):
    """Ctrl-C or a termination signal: stop every process of the demo."""


def _request_stop(signum, frame) -> None:
    raise StopRequested


@click.command("run-demo")
@with_appcontext
def run_demo_command() -> None:
    """Start the web server, a Celery worker and beat together; Ctrl-C stops them all."""
    url = current_app.config["PUBLIC_URL"].rstrip("/")
    # Installed explicitly: a shell that starts us in the background ignores SIGINT.
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    # Each process gets its own session: Ctrl-C reaches only this command, which then
    # stops each of them once and in order, instead of all of them being hit twice. The
    # commands are the demo's own, fixed, and run without a shell.
    processes = {
        name: subprocess.Popen(command, start_new_session=True)  # noqa: S603  # nosec B603
        for name, command in demo_processes(current_app.config).items()
    }
    try:
        # Beat's first heartbeat is one interval away; ask for one now to see the worker answer.
        record_heartbeat.delay()
        if not _wait_until_serving(url, processes):
            failed = [name for name, p in processes.items() if p.poll() is not None]
            raise click.ClickException(
                f"vcpay did not start (stopped: {', '.join(failed) or 'none'}); see the log above."
            )
        _print_welcome(url, processes)
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        stopped = [name for name, p in processes.items() if p.poll() is not None]
        raise click.ClickException(f"{', '.join(stopped)} stopped; stopping the rest.")
    except StopRequested:
        click.echo("\nStopping vcpay...")
    finally:
        _stop(processes)


commands = [seed_demo_command, run_demo_command, poll_jira_command, stripe_events, translations]
