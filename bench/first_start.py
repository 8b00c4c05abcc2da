"""A fresh clone's first start: how long `make install` takes, and `make run` to its first page.

For each Makefile (before: the one that installed with pip alone, from ``--before``; after: the
one committed at HEAD, which installs with uv and falls back to pip) it clones this repository
into a scratch folder, then times, as a person's first start would go:

- ``make install``: the venv, the locked packages, the project and the compiled catalogues
  (``make test`` sets up with the same target, then checks for Chromium);
- ``make run`` on free ports until the first page (``/``, signed out: the sign-in page)
  answers 200, and until it prints "vcpay is running" (the worker's heartbeat is in and the
  demo's past payments are written); then stops it as Ctrl-C would, and checks that none of
  its processes is left.

Caches: "cold" runs pip with ``PIP_NO_CACHE_DIR=1`` and uv with ``UV_NO_CACHE=1``, so every
package is downloaded, as on a new machine. "warm" (left out by ``--quick``) gives each
Makefile a scratch cache folder of its own, fills it with one install and then times a second
install into a second fresh clone: a developer's second clone. Both Makefiles are measured in
the same run, one after the other, on the same network.

    python bench/first_start.py [--quick] [--before REF]

Prints a table and, as its last line, one JSON object; saves it to bench/results/.
"""

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from urllib.error import URLError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.product import free_port, machine, save  # noqa: E402

# The last commit whose Makefile installed with pip alone.
BEFORE = "b781184"
GOAL_SECONDS = 30  # issue 14: a fresh clone's `make run` to its first page
RUN_LIMIT_SECONDS = 300
STOP_SECONDS = 30


def clone(into: Path, before: str | None) -> None:
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(into)], check=True)
    if before:
        makefile = subprocess.run(
            ["git", "show", f"{before}:Makefile"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        (into / "Makefile").write_bytes(makefile)


def environment(caches: str, cache_dir: Path | None, ports: dict[str, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCPAY_", "UV_", "VIRTUAL"))}
    env.pop("PIP_NO_CACHE_DIR", None)
    if caches == "cold":
        env["PIP_NO_CACHE_DIR"] = "1"
        env["UV_NO_CACHE"] = "1"
    else:
        env["PIP_CACHE_DIR"] = str(cache_dir / "pip")
        env["UV_CACHE_DIR"] = str(cache_dir / "uv")
    url = f"http://127.0.0.1:{ports['web']}"
    env.update(
        VCPAY_PUBLIC_URL=url,
        VCPAY_JIRA_URL=f"http://127.0.0.1:{ports['jira']}",
        VCPAY_SMTP_PORT=str(ports["smtp"]),
        VCPAY_MAIL_CATCHER_URL=f"http://127.0.0.1:{ports['mail']}",
        VCPAY_STRIPE_API_BASE=f"http://127.0.0.1:{ports['stripe']}",
    )
    return env


def first_page_answers(url: str) -> bool:
    try:
        # The demo's own loopback address.
        with urllib.request.urlopen(f"{url}/", timeout=2) as response:  # noqa: S310  # nosec B310
            return response.status == 200
    except (URLError, OSError):
        return False


def alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def sessions_below(pid: int) -> set[int]:
    """The sessions of ``pid`` and every process under it: `make run`'s supervisor starts
    each of its processes in a session of its own."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            table[int(stat.parent.name)] = (int(fields[1]), int(fields[3]), fields[0])
    found, grown = {pid}, True
    while grown:
        children = {child for child, (parent, _, _) in table.items() if parent in found}
        grown = bool(children - found)
        found |= children
    return {table[member][1] for member in found if member in table}


def left_in(sessions: set[int]) -> list[int]:
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) in sessions and fields[0] != "Z":
                left.append(int(stat.parent.name))
    return left


def stop_run(process: subprocess.Popen, sessions: set[int]) -> bool:
    """Ctrl-C to `make run`'s process group, as a terminal sends it; True when every process
    it started has stopped by itself."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_SECONDS)
    deadline = time.monotonic() + STOP_SECONDS
    while left_in(sessions) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = left_in(sessions)
    for pid in left:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return not left


def children_cpu() -> float:
    """CPU seconds of every process this one has waited for, their own children included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_install(checkout: Path, env: dict[str, str], log: Path) -> float:
    started = time.monotonic()
    with log.open("ab") as output:
        subprocess.run(
            ["make", "--no-print-directory", "install"],
            cwd=checkout,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=True,
        )
    return time.monotonic() - started


def timed_run(checkout: Path, env: dict[str, str], log: Path) -> dict:
    """`make run` (its install already up to date) to the first page and to its welcome."""
    url = env["VCPAY_PUBLIC_URL"]
    started = time.monotonic()
    first_page = welcome = None
    with log.open("ab") as output:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],
            cwd=checkout,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sessions = {process.pid}
    try:
        while time.monotonic() - started < RUN_LIMIT_SECONDS and process.poll() is None:
            sessions |= sessions_below(process.pid)
            if first_page is None and first_page_answers(url):
                first_page = time.monotonic() - started
            if welcome is None and b"vcpay is running at" in log.read_bytes():
                welcome = time.monotonic() - started
            if first_page is not None and welcome is not None:
                break
            time.sleep(0.1)
        sessions |= sessions_below(process.pid)
    finally:
        clean = stop_run(process, sessions)
    if first_page is None:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"`make run` never served its first page:\n{tail}")
    return {
        "run_to_first_page_s": round(first_page, 1),
        "run_to_welcome_s": round(welcome, 1) if welcome is not None else None,
        "stopped_cleanly": clean,
    }


def measure(makefile: str, before: str | None, caches: str, scratch: Path) -> dict:
    """One first start of a fresh clone with the given Makefile and caches."""
    ports = {name: free_port() for name in ("web", "jira", "smtp", "mail", "stripe")}
    cache_dir = scratch / f"cache-{makefile}"
    env = environment(caches, cache_dir, ports)
    log = scratch / f"{makefile}-{caches}.log"
    if caches == "warm" and not cache_dir.exists():
        filler = scratch / f"fill-{makefile}"
        clone(filler, before)
        timed_install(filler, env, log)
        shutil.rmtree(filler)
    checkout = scratch / f"{makefile}-{caches}"
    clone(checkout, before)
    load = os.getloadavg()[0]
    cpu = children_cpu()
    install = timed_install(checkout, env, log)
    install_cpu = children_cpu() - cpu
    run = timed_run(checkout, env, log)
    installer = "uv" if (checkout / ".venv" / "bin" / "uv").exists() else "pip"
    shutil.rmtree(checkout)
    total = install + run["run_to_first_page_s"]
    return {
        "makefile": makefile,
        "installer": installer,
        "caches": caches,
        "install_s": round(install, 1),
        "install_cpu_s": round(install_cpu, 1),
        **run,
        "clone_to_first_page_s": round(total, 1),
        # Other work on the machine stretches every wall time: the load when this run began.
        "load_average_at_start": round(load, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="cold caches only")
    parser.add_argument("--before", default=BEFORE, help="commit whose Makefile is 'before'")
    args = parser.parse_args()

    caches = ("cold",) if args.quick else ("cold", "warm")
    rows = []
    with tempfile.TemporaryDirectory(prefix="vcpay-first-start-") as scratch:
        for cache in caches:
            for makefile, before in (("before", args.before), ("after", None)):
                row = measure(makefile, before, cache, Path(scratch))
                rows.append(row)
                print(
                    f"{row['makefile']:<7} {row['installer']:<4} {row['caches']:<5} "
                    f"install {row['install_s']:6.1f} s  run to first page "
                    f"{row['run_to_first_page_s']:5.1f} s  "
                    f"total {row['clone_to_first_page_s']:6.1f} s"
                    f"  (welcome at {row['run_to_welcome_s']} s; install CPU "
                    f"{row['install_cpu_s']} s; load {row['load_average_at_start']})",
                    flush=True,
                )

    after_cold = next(r for r in rows if r["makefile"] == "after" and r["caches"] == "cold")
    summary = {
        "benchmark": "first_start",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": args.quick,
        "before": args.before,
        "goal_seconds": GOAL_SECONDS,
        "runs": rows,
        "goal_met": after_cold["clone_to_first_page_s"] <= GOAL_SECONDS,
    }
    save(summary, f"first_start{'-quick' if args.quick else ''}")


if __name__ == "__main__":
    main()
