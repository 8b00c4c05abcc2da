"""Whether open call streams slow the call screen and Request Payment down.

Measures the call page (``GET /calls/<id>``) and Request Payment (``POST /calls/<id>/payment-
requests``, each with a fresh request key, each making a Checkout Session on the Stripe
stand-in) with no event streams open, and with S streams open (``GET /calls/<id>/events``,
long-lived, as S call screens hold them), in phases none, streams, none, streams on the same
server. Each phase loads the page P times and requests payment P/2 times, one after the other
(page, page, Request Payment, ...). The streams are the clinician's, spread over several calls,
including the two measured: the one whose page is loaded and the one payments are requested
in (so each payment's event goes out to that call's streams). Streams open 250 at a time,
each batch started before the next; every stream must have sent its first bytes (the
``retry:`` line) before a phase is measured; the streams still open at the end of the phase
are counted, then all are closed, and the next phase starts only once the server has let them
go (it notices at its next keepalive write).

The whole product runs as ``make run`` runs it (``bench/product.py``): the Stripe and mail
stand-ins, gunicorn (gthread, 2 workers, ``VCPAY_WEB_THREADS`` threads, 256 by default; or
gevent with ``--worker-class gevent``), a Celery worker. The client (requests for the
measured calls, one selector thread for every stream) runs on the same cores. Request Payment
is spread over several signed-in browsers, each on its own loopback address (the form allows
30 a minute per address).

    python bench/call_streams.py [--quick] [--postgres] [--streams S] [--pages P]
                                 [--calls N] [--idle-streams] [--database-url URL]
                                 [--worker-class gthread|gevent] [--phases none,streams,...]
                                 [--profile prod]

Default: embedded (SQLite, file-system broker, no Redis: streams are woken by a 0.25 s poll),
200 streams, 100 page loads and 50 Request Payments per phase; ``--quick``: 50 streams, 30 page
loads and 15 Request Payments. The streams are spread over ``--calls`` calls (default 10: each
measured payment's event goes out to 20 of the 200 streams); ``--idle-streams`` puts them only
on calls other than the two measured, so no measured request's event reaches any of them.
``--postgres``: a scratch PostgreSQL database (created and
dropped; default ``vcpay_bench_streams`` on 127.0.0.1), the Redis broker and
``VCPAY_REDIS_URL`` (Redis databases 12 and 13, flushed at the start and the end; one
database for both with ``--redis-db``). ``--phases`` runs other phases than the four, e.g.
``none,streams,none`` for a long run.

``--worker-class gevent`` serves with gunicorn's gevent worker, each open stream a greenlet:
``--worker-connections`` (and ``VCPAY_WEB_CONNECTIONS``) is S plus the reserve for each of the
two workers, so that however the kernel spreads the streams over them none is refused. With
gthread (``make run``'s worker) each process holds at most ``VCPAY_WEB_THREADS`` less the
reserve; streams beyond are refused with 503 and counted as not started.

After each streams phase's measurement, one more Request Payment is made in every call the
streams are on; each stream still open must receive its own call's ``payment_requested``
event (``delivered``). Resident memory of gunicorn (master and workers, from /proc) is read
before the streams open and once they have all started.

``--profile prod``: vcpay as ``make run-prod`` runs it (``bench.product.ProductionProfile``:
deploy/Procfile's commands, one web instance, two workers and beat; implies ``--postgres``).

Goal: p95 with streams at most 1.5 times p95 without, for both the page and Request Payment.
Prints a table and, as its last line, one JSON object; saves it to bench/results/.
"""

import argparse
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.product import (
    CLINICIAN,
    Browser,
    Product,
    StreamHub,
    addresses,
    cpu_seconds,
    database_version,
    machine,
    new_request_key,
    percentile,
    product_on,
    redis_urls,
    save,
    summary_ms,
    tcp_states,
    wait_until,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/vcpay_bench_streams"
PHASES = ("none", "streams", "none", "streams")
GOAL_RATIO = 1.5
BROWSERS = 12  # 12 addresses x 30 Request Payments a minute
KEEPALIVE_SECONDS = 15  # vcpay.calls.stream.KEEPALIVE_SECONDS
WARM_UP_PAGES = 10
RESERVED = 32  # VCPAY_STREAM_RESERVED_THREADS' default: room kept for pages in each process
OPEN_BATCH = 250  # streams opened at once, each batch started before the next opens
DELIVERY_SECONDS = 60


def run(args: argparse.Namespace) -> dict:
    raise_open_file_limit()
    options = {"web_instances": 1} if args.profile == "prod" else {}  # one instance's ceiling
    product = product_on(
        args.profile,
        "production" if args.postgres else "embedded",
        args.database_url,
        extra_env=stream_caps(args.streams, args.worker_class),
        worker_class=args.worker_class,
        **redis_urls(args.redis_db),
        **options,
    )
    try:
        product.start()
        clinic_id = product.link_gp_clinic()
        browsers = [Browser(product.base, a).sign_in(CLINICIAN) for a in addresses(BROWSERS)]
        calls = [
            browsers[n % BROWSERS].start_call(clinic_id, f"Patient {n}") for n in range(args.calls)
        ]
        page_call, pay_call = calls[0], calls[1]
        tokens = {b.address: b.call_form(pay_call)["csrf_token"] for b in browsers}
        setup_page_call(product, browsers[0], page_call)
        stream_calls = calls[2:] if args.idle_streams else calls
        bench = Bench(product, browsers, tokens, stream_calls, page_call, pay_call)
        # Warm-up, not counted: every path, and a few streams so that each web process has
        # started its call waker (it starts with the first stream and runs for good).
        bench.sample(WARM_UP_PAGES, WARM_UP_PAGES // 2)
        bench.streams_phase(8, 0, 0)
        phases = []
        for number, kind in enumerate(args.phases, 1):
            if kind == "none":
                phase = bench.none_phase(args.pages, args.pages // 2)
            else:
                phase = bench.streams_phase(args.streams, args.pages, args.pages // 2)
            phase["phase"] = f"{number} {kind}"
            phases.append(phase)
            print(
                f"  phase {number} {kind:<7}: page p95 {phase['page']['p95_ms']} ms, "
                f"Request Payment p95 {phase['request_payment']['p95_ms']} ms"
                + (
                    f"; streams started {phase['streams']['started']}/{args.streams}, "
                    f"open at end {phase['streams']['open_at_end']}"
                    if kind == "streams"
                    else ""
                ),
                flush=True,
            )
        database = database_version(product.database_url) if args.postgres else "sqlite"
        web_threads, web_connections = product.web_threads, product.web_connections
    except BaseException:
        product.failed = True
        raise
    finally:
        clean = product.close()
    return {
        "phases": phases,
        "database_version": database,
        "web_threads": web_threads,
        "web_connections": web_connections,
        "stopped_cleanly": clean,
    }


def stream_caps(streams: int, worker_class: str) -> dict[str, str]:
    """The streams stand for as many call screens of different people, but all sign in as the
    one demo clinician from 12 addresses: lift the per-person and per-address caps
    (``VCPAY_STREAMS_PER_SESSION``, ``VCPAY_STREAMS_PER_ADDRESS``) so that none replaces
    another. Under gthread each process's ceiling stays as configured; under gevent each
    worker has connections for every stream plus the reserve."""
    caps = {
        "VCPAY_STREAMS_PER_SESSION": str(streams + 8),  # + the warm-up's streams
        "VCPAY_STREAMS_PER_ADDRESS": str(streams + 8),
    }
    if worker_class == "gevent":
        caps["VCPAY_WEB_CONNECTIONS"] = str(streams + 8 + RESERVED)
    return caps


def raise_open_file_limit() -> None:
    """Each stream is a socket at both ends: lift this process's soft limit on open files to
    the hard one (the servers it starts inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def setup_page_call(product: Product, browser: Browser, call_id: int) -> None:
    """The measured page shows what a call screen usually does: three requests, one paid."""
    form = browser.call_form(call_id)
    keys = [new_request_key() for _ in range(3)]
    for key in keys:
        answer = browser.request_payment(call_id, form["csrf_token"], key, "85.00", "Consult")
        if answer.status_code != 303:
            raise RuntimeError(f"Request Payment answered {answer.status_code}")
    product.stripe.pay(product.stripe.session_ids_by_request()[keys[0]])
    if not wait_until(lambda: "Payment received" in browser.get(f"/calls/{call_id}").text, 30):
        raise RuntimeError("the setup payment was not processed")


class Bench:
    def __init__(self, product, browsers, tokens, calls, page_call, pay_call):
        self.product = product
        self.browsers = browsers
        self.tokens = tokens
        self.calls = calls
        self.page_call = page_call
        self.pay_call = pay_call
        self.requested = 0
        self.expected: dict[int, str] = {}  # call id -> the request key its streams must see
        self.delivered: set[int] = set()  # ids of the streams that received it

    def on_event(self, _now: float, stream, data: dict) -> None:
        call_id = int(stream.path.split("/")[2])
        if data.get("kind") == "payment_requested" and data.get("request") == self.expected.get(
            call_id
        ):
            self.delivered.add(id(stream))

    def sample(self, pages: int, payments: int) -> dict:
        """Page, page, Request Payment, ...: each timed to the last byte of the answer."""
        page_times, payment_times, failures = [], [], 0
        for number in range(pages):
            started = time.perf_counter()
            answer = self.browsers[0].get(f"/calls/{self.page_call}")
            page_times.append(time.perf_counter() - started)
            failures += answer.status_code != 200
            if number % 2 == 1 and len(payment_times) < payments:
                browser = self.browsers[self.requested % len(self.browsers)]
                self.requested += 1
                started = time.perf_counter()
                answer = browser.request_payment(
                    self.pay_call, self.tokens[browser.address], new_request_key(),
                    f"{20 + self.requested % 80}.00", f"Consult {self.requested}",
                )  # fmt: skip
                payment_times.append(time.perf_counter() - started)
                failures += answer.status_code != 303
        return {
            "page": summary_ms(page_times),
            "request_payment": summary_ms(payment_times),
            "failures": failures,
            "_seconds": {"page": page_times, "request_payment": payment_times},
        }

    def none_phase(self, pages: int, payments: int) -> dict:
        before = tcp_states(self.product.web_port)
        phase = self._timed(lambda: self.sample(pages, payments))
        phase["server_sockets_before"] = before
        return phase

    def streams_phase(self, count: int, pages: int, payments: int) -> dict:
        hub = StreamHub("127.0.0.1", self.product.web_port, self.on_event)
        memory_before = self.product.web_memory()
        try:
            # As the call screen opens it: after the newest event the page showed.
            newest = {c: self.browsers[0].call_form(c)["last_event_id"] for c in self.calls}
            streams = []
            opened_at = time.monotonic()
            # Call screens open over time, not in one instant: a batch at a time, each started
            # (or refused) before the next, so the measure is of streams held, not of a storm.
            for number in range(count):
                browser = self.browsers[number % len(self.browsers)]
                call_id = self.calls[number % len(self.calls)]
                path = f"/calls/{call_id}/events?after={newest[call_id]}"
                streams.append(hub.open(path, browser))
                if len(streams) % OPEN_BATCH == 0 or len(streams) == count:
                    wait_until(lambda: all(s.first_bytes_at or s.error for s in streams), 60, 0.05)
            started = sum(s.first_bytes_at is not None for s in streams)
            started_seconds = round(time.monotonic() - opened_at, 1)
            sockets = tcp_states(self.product.web_port)
            memory = self.product.web_memory()
            phase = self._timed(lambda: self.sample(pages, payments)) if pages else {}
            delivery = self.deliver(streams) if pages else {}
            phase["streams"] = {
                "opened": count,
                "started": started,
                "started_seconds": started_seconds,
                "refused_503": sum(s.error == "HTTP 503" for s in streams),
                **delivery,
                "web_memory_before": memory_before,
                "web_memory": memory,
                "open_at_end": sum(s.open and not s.error for s in streams),
                "reconnects": sum(s.reconnects for s in streams),
                "errors": sum(bool(s.error) for s in streams),
                "events_read": sum(s.events for s in streams),
                "server_sockets": sockets,
            }
        finally:
            hub.close()
        phase["streams"]["released_seconds"] = self._released()
        return phase

    def deliver(self, streams: list) -> dict:
        """One more Request Payment in each call the streams are on: every stream still open
        must receive its own call's ``payment_requested`` event."""
        self.delivered.clear()
        for call_id in self.calls:
            browser = self.browsers[self.requested % len(self.browsers)]
            self.requested += 1
            key = new_request_key()
            self.expected[call_id] = key
            answer = browser.request_payment(
                call_id, self.tokens[browser.address], key, "30.00", f"Delivery {self.requested}"
            )
            if answer.status_code != 303:
                raise RuntimeError(f"Request Payment answered {answer.status_code}")
        requested_at = time.monotonic()
        listening = [s for s in streams if s.open and not s.error]
        wait_until(lambda: all(id(s) in self.delivered for s in listening), DELIVERY_SECONDS, 0.05)
        return {
            "listening": len(listening),
            "delivered": sum(id(s) in self.delivered for s in listening),
            "delivery_seconds": round(time.monotonic() - requested_at, 2),
        }

    def _released(self) -> float:
        """Wait until the server has let every closed stream go: its socket leaves CLOSE_WAIT
        at the next keepalive write, and that thread ends at the write after it."""
        started = time.monotonic()
        wait_until(
            lambda: tcp_states(self.product.web_port).get("CLOSE_WAIT", 0) == 0,
            KEEPALIVE_SECONDS * 3,
        )
        time.sleep(KEEPALIVE_SECONDS + 1)
        return round(time.monotonic() - started, 1)

    def _timed(self, action) -> dict:
        groups = self.product.server_groups()
        before, load = cpu_seconds(groups), os.getloadavg()[0]
        started = time.perf_counter()
        phase = action()
        wall = time.perf_counter() - started
        after = cpu_seconds(groups)
        phase["wall_seconds"] = round(wall, 2)
        phase["cpu_share"] = {k: round((after[k] - before[k]) / wall, 2) for k in after}
        phase["load_average"] = load
        return phase


def combine(phases: list[dict], kind: str, what: str) -> list[float]:
    return [s for p in phases if p["phase"].endswith(kind) for s in p["_seconds"][what]]


def compare(phases: list[dict]) -> dict:
    result = {}
    for what in ("page", "request_payment"):
        none, streams = combine(phases, "none", what), combine(phases, "streams", what)
        ratio = percentile(streams, 0.95) / percentile(none, 0.95)
        result[what] = {
            "none": summary_ms(none),
            "streams": summary_ms(streams),
            "ratio_p95": round(ratio, 2),
            "goal_met": ratio <= GOAL_RATIO,
        }
    return result


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 streams, 30 pages a phase")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis")
    parser.add_argument("--streams", type=int, help="open streams (default 200; quick 50)")
    parser.add_argument("--pages", type=int, help="page loads a phase (default 100; quick 30)")
    parser.add_argument("--calls", type=int, default=10, help="calls the streams are spread on")
    parser.add_argument(
        "--idle-streams",
        action="store_true",
        help="streams only on calls other than the two measured (no event reaches them)",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help="scratch database")
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help="none and streams phases, in order (default none,streams,none,streams)",
    )
    parser.add_argument(
        "--redis-db", type=int, help="one Redis database for both (default 12 and 13)"
    )
    parser.add_argument(
        "--worker-class",
        choices=("gthread", "gevent"),
        default="gthread",
        help="gunicorn's worker: a thread (make run) or a greenlet per open stream",
    )
    parser.add_argument(
        "--profile", choices=("run", "prod"), default="run",
        help="vcpay as `make run` runs it, or as `make run-prod` does (one web instance)",
    )  # fmt: skip
    args = parser.parse_args()
    args.postgres = args.postgres or args.profile == "prod"  # production means PostgreSQL
    args.streams = args.streams or (50 if args.quick else 200)
    args.pages = args.pages or (30 if args.quick else 100)
    args.phases = tuple(args.phases.split(","))
    if set(args.phases) != {"none", "streams"}:
        parser.error("--phases needs at least one none and one streams phase, and nothing else")
    return args


def main() -> None:
    args = parse_args()
    started_at = datetime.now(UTC)
    load_before = os.getloadavg()
    mode = "postgresql" if args.postgres else "embedded"
    where = f"{args.calls - 2} other calls" if args.idle_streams else f"{args.calls} calls"
    print(
        f"call streams, {mode}, gunicorn {args.worker_class}: {args.streams} streams on "
        f"{where}; per phase "
        f"{args.pages} page loads and {args.pages // 2} Request Payments; phases "
        f"{', '.join(args.phases)}",
        flush=True,
    )
    outcome = run(args)
    phases = outcome["phases"]
    comparison = compare(phases)
    for phase in phases:
        phase.pop("_seconds")
    summary = {
        "benchmark": "call_streams",
        "date": started_at.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average": {"before": load_before[0], "after": os.getloadavg()[0]},
        "mode": mode,
        "profile": args.profile,
        "database": outcome["database_version"],
        "quick": args.quick,
        "streams": args.streams,
        "calls": args.calls,
        "idle_streams": args.idle_streams,
        "pages_per_phase": args.pages,
        "request_payments_per_phase": args.pages // 2,
        "gunicorn": gunicorn_shape(args.worker_class, outcome),
        "comparison": comparison,
        "phases": phases,
        "goal_met": all(c["goal_met"] for c in comparison.values()) and all_delivered(phases),
        "stopped_cleanly": outcome["stopped_cleanly"],
    }
    print_table(summary)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    quick = "-quick" if args.quick else ""
    save(summary, f"call_streams-{mode}-{args.worker_class}{quick}-{stamp}")


def gunicorn_shape(worker_class: str, outcome: dict) -> dict:
    if worker_class == "gevent":
        return {"worker_class": "gevent", "workers": 2, "connections": outcome["web_connections"]}
    return {"worker_class": "gthread", "workers": 2, "threads": outcome["web_threads"]}


def all_delivered(phases: list[dict]) -> bool:
    """Every stream that started in a streams phase, and was still open, got its event."""
    opened = [p["streams"] for p in phases if "streams" in p]
    return all(s["started"] == s["opened"] and s["delivered"] == s["listening"] for s in opened)


def print_table(summary: dict) -> None:
    print()
    print(f"{'phase':<10} {'page p50':>9} {'page p95':>9} {'RP p50':>8} {'RP p95':>8}  streams")
    for p in summary["phases"]:
        streams = p.get("streams")
        detail = (
            f"{streams['started']} started, {streams['refused_503']} refused, "
            f"{streams['delivered']}/{streams['listening']} got their event in "
            f"{streams['delivery_seconds']} s, web RSS {streams['web_memory_before']['total_mib']}"
            f" -> {streams['web_memory']['total_mib']} MiB"
            if streams
            else "-"
        )
        print(
            f"{p['phase']:<10} {p['page']['p50_ms']:9.1f} {p['page']['p95_ms']:9.1f} "
            f"{p['request_payment']['p50_ms']:8.1f} {p['request_payment']['p95_ms']:8.1f}  "
            f"{detail}"
        )
    print()
    print(f"{'':<16} {'p50 none':>9} {'p95 none':>9} {'p50 streams':>12} {'p95 streams':>12} "
          f"{'ratio p95':>10}  goal <= {GOAL_RATIO}")  # fmt: skip
    for what, c in summary["comparison"].items():
        print(
            f"{what:<16} {c['none']['p50_ms']:9.1f} {c['none']['p95_ms']:9.1f} "
            f"{c['streams']['p50_ms']:12.1f} {c['streams']['p95_ms']:12.1f} "
            f"{c['ratio_p95']:10.2f}  {c['goal_met']}"
        )
    print(
        f"gunicorn {summary['gunicorn']}; stopped cleanly {summary['stopped_cleanly']}; "
        f"load average {summary['load_average']}"
    )


if __name__ == "__main__":
    main()
