"""Commands for ``flask --app wsgi ...``: demo data and the one-command demo."""

import signal
import subprocess
import sys
import time
import urllib.request
from urllib.error import URLError
from urllib.parse import urlsplit

import click
from flask import current_app
from flask.cli import with_appcontext

from vcpay.extensions import db
from vcpay.people.demo import DEMO_PASSWORD, DEMO_PEOPLE, seed_demo
from workers import is_embedded_broker

STARTUP_SECONDS = 60


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Create the demo organisation, clinics and people (safe to run again)."""
    organisation = seed_demo()
    db.session.commit()
    click.echo(f"Demo data ready: {organisation.name}, {len(organisation.clinics)} clinics.")


def _bind_address(public_url: str) -> str:
    parts = urlsplit(public_url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 5000}"


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
            "--threads",
            "8",
            "--access-logfile",
            "-",
        ],
        "worker": worker,
        "beat": [*celery, "beat", "--loglevel", "INFO", "--schedule", schedule],
    }


def _wait_until_serving(url: str, processes: dict[str, subprocess.Popen]) -> bool:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes.values()):
            return False
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except (URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def _print_welcome(url: str) -> None:
    click.echo("")
    click.secho(f"vcpay is running at {url}", bold=True)
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for person in DEMO_PEOPLE:
        click.echo(f"  {person.email:<34} {person.role}")
    click.echo("Press Ctrl-C to stop the web server, the worker and beat.")
    click.echo("")


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


@click.command("run-demo")
@with_appcontext
def run_demo_command() -> None:
    """Start the web server, a Celery worker and beat together; Ctrl-C stops them all."""
    url = current_app.config["PUBLIC_URL"].rstrip("/")
    processes = {
        name: subprocess.Popen(command)  # noqa: S603 - our own fixed command lines
        for name, command in demo_processes(current_app.config).items()
    }
    try:
        if not _wait_until_serving(url, processes):
            failed = [name for name, p in processes.items() if p.poll() is not None]
            raise click.ClickException(
                f"vcpay did not start (stopped: {', '.join(failed) or 'none'}); see the log above."
            )
        _print_welcome(url)
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        stopped = [name for name, p in processes.items() if p.poll() is not None]
        raise click.ClickException(f"{', '.join(stopped)} stopped; stopping the rest.")
    except KeyboardInterrupt:
        click.echo("\nStopping vcpay...")
    finally:
        _stop(processes)


commands = [seed_demo_command, run_demo_command]
