"""``make run`` (``python -m sandbox.demo``): vcpay's web server, a Celery worker and beat,
and the stand-ins it talks to, started together; Ctrl-C stops them all.

Demo tooling, not the product: it never imports vcpay. It asks the product for the settings
it needs (``flask --app wsgi demo-settings``, one line of JSON without secrets) and runs the
product's own commands (gunicorn, celery) as processes, the way a deployment would.
"""

import json
import os
import signal
import subprocess  # nosec B404  # the demo's own fixed commands, no shell
import sys
import time
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

import click

from sandbox.demo_history import write_demo_history

STARTUP_SECONDS = 60
STOP_SECONDS = 15
# Where the stand-ins are started: a service the product is pointed at on this machine.
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
HEARTBEAT_TASK = "vcpay.health.record_heartbeat"
# The Stripe stand-in pays out every account's balance this often, so a payment taken in the
# demo shows up in a payout within minutes.
PAYOUT_SECONDS = os.environ.get("STRIPE_STANDIN_PAYOUT_SECONDS") or "300"
Settings = Mapping[str, Any]


def is_local(url: str) -> bool:
    return urlsplit(url).hostname in LOCAL_HOSTS


def product_settings() -> dict[str, Any]:
    """What the product says about itself: ``flask --app wsgi demo-settings``."""
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "demo-settings"]
    # Its errors (a setting that does not read) go straight to the terminal.
    answer = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)  # noqa: S603  # nosec B603
    lines = [line for line in answer.stdout.splitlines() if line.strip()]
    if answer.returncode != 0 or not lines:
        raise click.ClickException("vcpay's settings could not be read; see the log above.")
    return json.loads(lines[-1])


# -- the command lines -------------------------------------------------------------------------


def bind_address(public_url: str) -> str:
    parts = urlsplit(public_url)
    return f"{parts.hostname or '127.0.0.1'}:{parts.port or 5000}"


def web_command(settings: Settings) -> list[str]:
    """gunicorn as the demo (and the tests that stand in for it) serve vcpay."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "wsgi:app",
        "--bind",
        bind_address(settings["PUBLIC_URL"]),
        "--worker-class",
        "gthread",
        "--workers",
        "2",
        # Each open call screen holds a thread for its event stream (waiting, not working).
        # Streams take at most WEB_THREADS less STREAM_RESERVED_THREADS of them
        # (vcpay.calls.stream), so pages, sign-in and webhooks always find one.
        "--threads",
        str(settings["WEB_THREADS"]),
        # Open call streams would hold a stop for the whole default grace.
        "--graceful-timeout",
        "5",
        "--access-logfile",
        "-",
        "--logger-class",
        "vcpay.access_log.MaskedAccessLogger",
    ]


def celery(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.main", *arguments]


def worker_command(settings: Settings) -> list[str]:
    worker = celery("worker", "--loglevel", "INFO", "--concurrency", "2")
    if settings["EMBEDDED_BROKER"]:
        # Mingle and gossip need a broadcast-capable broker.
        worker += ["--without-mingle", "--without-gossip"]
    return worker


def beat_command(settings: Settings) -> list[str]:
    schedule = f"{settings['INSTANCE_PATH']}/celerybeat-schedule"
    return celery("beat", "--loglevel", "INFO", "--schedule", schedule)


def jira_standin_command(settings: Settings) -> list[str]:
    jira = urlsplit(settings["JIRA_URL"])
    return [
        sys.executable, "-m", "sandbox.jira",
        "--host", jira.hostname or "127.0.0.1", "--port", str(jira.port or 80),
        "--public-url", settings["JIRA_URL"],
        "--state-file", f"{settings['INSTANCE_PATH']}/jira-standin.json",
        "--webhook-url", f"{settings['PUBLIC_URL'].rstrip('/')}/webhooks/jira",
    ]  # fmt: skip


def stripe_standin_command(settings: Settings) -> list[str]:
    """The Stripe stand-in, knowing vcpay as its Connect platform and webhook endpoint.

    It reads the platform key and webhook secret from the environment it inherits, where
    vcpay reads them (or both use the same published defaults): never from the command line.
    """
    api = urlsplit(settings["STRIPE_API_BASE"])
    public = settings["PUBLIC_URL"].rstrip("/")
    return [
        sys.executable, "-m", "sandbox.stripe",
        "--host", api.hostname or "127.0.0.1", "--port", str(api.port or 80),
        "--public-url", settings["STRIPE_API_BASE"].rstrip("/"),
        "--state-file", f"{settings['INSTANCE_PATH']}/stripe-standin.json",
        "--client-id", settings["STRIPE_CLIENT_ID"],
        "--redirect-uri", f"{public}/client-payments/stripe/callback",
        "--webhook-url", f"{public}/webhooks/stripe",
        "--demo-accounts",
        "--payout-seconds", PAYOUT_SECONDS,
    ]  # fmt: skip


def mail_catcher_command(settings: Settings) -> list[str]:
    catcher = urlsplit(settings["MAIL_CATCHER_URL"])
    return [
        sys.executable, "-m", "sandbox.mail",
        "--host", settings["SMTP_HOST"], "--smtp-port", str(settings["SMTP_PORT"]),
        "--http-port", str(catcher.port or 80),
        "--folder", f"{settings['INSTANCE_PATH']}/mail",
    ]  # fmt: skip


def standin_processes(settings: Settings) -> dict[str, list[str]]:
    """The stand-ins for the services vcpay is pointed at on this machine."""
    processes = {}
    if is_local(settings["JIRA_URL"]):
        processes["jira"] = jira_standin_command(settings)
    if is_local(settings["STRIPE_API_BASE"]):
        processes["stripe"] = stripe_standin_command(settings)
    if settings["SMTP_HOST"] in LOCAL_HOSTS:
        processes["mail"] = mail_catcher_command(settings)
    return processes


def demo_processes(settings: Settings) -> dict[str, list[str]]:
    """The command line of each process the demo runs, by name."""
    return {
        **standin_processes(settings),
        "web": web_command(settings),
        "worker": worker_command(settings),
        "beat": beat_command(settings),
    }


# -- running them ------------------------------------------------------------------------------


def heartbeat_since(url: str, started: datetime) -> bool:
    """Whether the web server answers and the worker has recorded a beat since ``started``."""
    try:
        # vcpay's own PUBLIC_URL, http or https: no file: or custom scheme reaches here.
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310  # nosec B310
            beat = json.load(response).get("last_worker_heartbeat")
    except (URLError, OSError, ValueError):
        return False
    return beat is not None and datetime.fromisoformat(beat) >= started


def wait_until_serving(url: str, processes: dict[str, subprocess.Popen]) -> bool:
    """Wait for the web server, beat and the worker: a heartbeat needs all three."""
    started = datetime.now(UTC).replace(microsecond=0)
    # Beat's first heartbeat is one interval away; ask for one now to see the worker answer.
    ask_for_heartbeat = celery("call", HEARTBEAT_TASK)
    subprocess.Popen(ask_for_heartbeat, stdout=subprocess.DEVNULL)  # noqa: S603  # nosec B603
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes.values()):
            return False
        if heartbeat_since(url, started):
            return True
        time.sleep(0.5)
    return False


def payout_interval(seconds: str) -> str:
    minutes, rest = divmod(float(seconds), 60)
    return f"{minutes:g} minutes" if not rest else f"{float(seconds):g} seconds"


def print_welcome(settings: Settings, processes: dict, history: str | None = None) -> None:
    url = settings["PUBLIC_URL"].rstrip("/")
    click.echo("")
    click.secho(f"vcpay is running at {url}", bold=True)
    click.echo(f"Demo logins (password for all: {settings['DEMO_PASSWORD']}):")
    for person in settings["DEMO_PEOPLE"]:
        click.echo(f"  {person['email']:<34} {person['role']}")
    if "jira" in processes:
        click.echo(f"Service desk stand-in (approve or decline requests): {settings['JIRA_URL']}/")
    if "stripe" in processes:
        click.echo(
            f"Stripe stand-in (test accounts and their dashboards): {settings['STRIPE_API_BASE']}/"
        )
        click.echo(
            f"  It pays out each account's balance every {payout_interval(PAYOUT_SECONDS)} "
            "(STRIPE_STANDIN_PAYOUT_SECONDS)."
        )
    if "mail" in processes:
        click.echo(f"Email vcpay sent (local catcher): {settings['MAIL_CATCHER_URL']}/")
    if history:
        click.echo(history)
    click.echo(
        "The GP clinic's Stripe account is linked, with four weeks of past payments, refunds "
        "and payouts. To take a payment: as clinician@… open Calls, start a call, open the "
        "patient's link in another browser window, then Apps & Tools, Request Payment; pay "
        "with card 4242 4242 4242 4242."
    )
    click.echo("A ten-minute tour, step by step: the README's *A ten-minute tour*.")
    click.echo("Press Ctrl-C to stop the web server, the worker and beat.")
    click.echo("")


def past_payments(settings: Settings) -> str:
    """The GP clinic's past weeks, at the stand-in and in vcpay, on the first start."""
    try:
        return write_demo_history(settings["STRIPE_API_BASE"], settings["INSTANCE_PATH"])
    except (OSError, AssertionError, ValueError) as failed:  # ControlRefused is an assertion
        return f"Past payments not written: {failed}"


def stop(processes: dict[str, subprocess.Popen]) -> None:
    # A second Ctrl-C must not interrupt the stopping and leave processes behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


class StopRequested(Exception):
    """Ctrl-C or a termination signal: stop every process of the demo."""


def request_stop(signum, frame) -> None:
    raise StopRequested


def run(settings: Settings) -> None:
    """Start every process; return when Ctrl-C asks, or fail when one of them stops."""
    url = settings["PUBLIC_URL"].rstrip("/")
    # Each process gets its own session: Ctrl-C reaches only this supervisor, which then
    # stops each of them once and in order, instead of all of them being hit twice. The
    # commands are the demo's own, fixed, and run without a shell.
    processes = {
        name: subprocess.Popen(command, start_new_session=True)  # noqa: S603  # nosec B603
        for name, command in demo_processes(settings).items()
    }
    try:
        if not wait_until_serving(url, processes):
            failed = [name for name, p in processes.items() if p.poll() is not None]
            raise click.ClickException(
                f"vcpay did not start (stopped: {', '.join(failed) or 'none'}); see the log above."
            )
        history = None
        if "stripe" in processes:
            history = past_payments(settings)
        print_welcome(settings, processes, history)
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        stopped = [name for name, p in processes.items() if p.poll() is not None]
        raise click.ClickException(f"{', '.join(stopped)} stopped; stopping the rest.")
    except StopRequested:
        click.echo("\nStopping vcpay...")
    finally:
        stop(processes)


@click.command()
def main() -> None:
    """Start vcpay's web server, a Celery worker, beat and the stand-ins; Ctrl-C stops them."""
    settings = product_settings()
    # Installed explicitly: a shell that starts us in the background ignores SIGINT.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    run(settings)


if __name__ == "__main__":
    main()
