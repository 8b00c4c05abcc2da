"""Run the product's real processes (Celery worker and beat, the demo) from tests."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def product_environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCPAY_")}
    env.update(settings)
    return env


@contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """Start ``command`` in its own process group; stop the whole group afterwards."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def celery(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "workers.main", *arguments]


def wait_for(condition: Callable[[], object], timeout: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{tail}")


def process_table() -> dict[int, tuple[int, int, str]]:
    """Each process on the machine: its parent, its session and its state, from /proc."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            table[int(stat.parent.name)] = (int(fields[1]), int(fields[3]), fields[0])
    return table


def sessions_below(pid: int) -> set[int]:
    """The session of ``pid`` and of every process under it. A child that starts a session
    of its own (each of `make run`'s does) is found by it, whatever its command line says."""
    table = process_table()
    found, grown = {pid}, True
    while grown:
        children = {child for child, (parent, _, _) in table.items() if parent in found}
        grown = bool(children - found)
        found |= children
    return {table[member][1] for member in found if member in table}


def alive_in_sessions(sessions: set[int]) -> dict[int, str]:
    """The command line of each process still running in one of ``sessions``."""
    alive = {}
    for pid, (_, session, state) in process_table().items():
        if session in sessions and state != "Z":  # a zombie has already exited
            with suppress(OSError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
                alive[pid] = command.replace(b"\0", b" ").decode(errors="replace").strip()
    return alive


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


STARTUP_LIMIT_SECONDS = 120


@contextmanager
def running_product(instance: Path, **settings: str) -> Iterator[dict]:
    """`make run` on free ports, stand-ins included; stopped with Ctrl-C afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    jira_url = f"http://127.0.0.1:{free_port()}"
    catcher_url = f"http://127.0.0.1:{free_port()}"
    stripe_url = f"http://127.0.0.1:{free_port()}"
    env = product_environment(
        VCPAY_INSTANCE_PATH=str(instance),
        VCPAY_PUBLIC_URL=url,
        VCPAY_JIRA_URL=jira_url,
        VCPAY_SMTP_PORT=str(free_port()),
        VCPAY_MAIL_CATCHER_URL=catcher_url,
        VCPAY_STRIPE_API_BASE=stripe_url,
        **settings,
    )
    log = instance / "make-run.log"
    started = time.monotonic()
    with running(["make", "--no-print-directory", "run"], env, log) as process:
        wait_for(
            lambda: f"vcpay is running at {url}" in log.read_text(errors="replace"),
            STARTUP_LIMIT_SECONDS,
            "`make run` to print its URL",
            log,
        )
        yield {
            "url": url,
            "port": port,
            "jira_url": jira_url,
            "catcher_url": catcher_url,
            "stripe_url": stripe_url,
            "log": log,
            "env": env,  # to run a command as the operator would, beside the running product
            "process": process,
            "startup_seconds": time.monotonic() - started,
        }
        # Ctrl-C in a terminal signals the whole foreground group.
        stop_group(process, signal.SIGINT)
