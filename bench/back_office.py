"""The Payments page and its CSV export with 100,000 payments on PostgreSQL.

Builds a scratch PostgreSQL database with the migrations (created at the start, dropped at the
end; default ``vcpay_bench_backoffice`` on 127.0.0.1), seeds the demo organisation and, for its
GP clinic (time zone Australia/Sydney), 100,000 payment requests spread over the last two years
and over 2,000 ended calls: mostly paid, some partly or fully refunded, expired, cancelled or
failed, with varied descriptions, patients and receipt numbers, and weekly payouts holding the
settled ones. The rows are written with COPY; the table is then vacuumed and analysed, as
autovacuum would have done to a table that grew over two years.

Then the real application (``create_app`` on that database) answers through Flask's test
client, in this process, signed in as the clinic admin (no HTTP: the figures are the
application's and the database's, not a web server's). In rounds, each path once a round
(warm-up rounds first, not counted):

- ``GET /settings`` (a signed-in page with nothing to read: the baseline), and ``SELECT 1``;
- the first page as the navigation opens it, ``GET /payments/`` (the last 30 days), and the
  first page of every payment, ``GET /payments/?from=&to=`` (dates left empty: no limit);
- the 500th page of every payment ``GET /payments/?from=&to=&after=<cursor>``: the cursor is
  the one the 499th page's "Older" link carries, found once by walking the pages
  (``page_of``) as the links do;
- a filtered search ``?q=smith&status=settled&from=<a year ago>&to=<today>``;
- a search over every day that matches one payment (a receipt number, as read off a bank
  statement), which the trigram indexes serve on PostgreSQL with pg_trgm;
- the totals: there is no endpoint of their own; the first page of a selection reads them
  with the daily takings of its chart (``totals_and_takings``), which is timed on its own, for
  the last 30 days, for every day and for the filtered search.

The first page and the searches include the totals and the chart; the 500th page does not
(a selection's totals and chart are read on its first page only).

Export: a fresh process (``--export-child``) makes the app, signs in, warms up (the first page
and a one-day export), then takes its resident memory as "idle" and resets the kernel's
high-water mark (``/proc/self/clear_refs``); it streams ``GET /payments/export.csv`` for every
row, counting rows and dropping each chunk, and reads the high-water mark (VmHWM) again. The
peak is resident memory of the whole process, not only Python's allocations.

``--verbose`` prints the query plans (EXPLAIN ANALYZE) of the first and the 500th page's keyset
query, of the totals and of the searches; the JSON records whether both pages read the index
(clinic_id, created_at, id).

    python bench/back_office.py [--quick] [--payments N] [--rounds R] [--database-url URL]
                                [--keep] [--reuse] [--verbose]

``--quick``: 5,000 payments, 15 rounds (the 500th page then does not exist: the deepest page,
the 100th, is timed instead). ``--keep`` leaves the database; ``--reuse`` measures one left by
``--keep`` without seeding again (its migrations are brought up to date first).

Goals (issue 13): each page p95 ≤ 100 ms; export peak memory ≤ 50 MB above the idle process;
export ≥ 20,000 rows a second. Prints a table and, as its last line, one JSON object; saves it
to bench/results/.
"""

import argparse
import gc
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.product import (  # noqa: E402
    CLINIC_ADMIN,
    GP_CLINIC,
    PASSWORD,
    database_version,
    drop_database,
    machine,
    recreate_database,
    save,
    summary_ms,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/vcpay_bench_backoffice"
CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
KEYSET_INDEX = "ix_payment_requests_clinic_id_created_at"
TRIGRAM_INDEX = "_trgm"  # vcpay.database.SEARCH_INDEXES: one on each searched column
EVERY_DAY = {"from": "", "to": ""}  # the dates left empty: every payment, not the last 30 days
ZONE = "Australia/Sydney"
DEEP_PAGE = 500
PAGE_SIZE = 50  # vcpay.ledger.listing.PAGE_SIZE
WARM_UP_ROUNDS = 3
GOAL_PAGE_P95_MS = 100
GOAL_EXPORT_MB = 50
GOAL_ROWS_PER_SECOND = 20_000

# What a clinic's payments look like: states by share, amounts, descriptions and patients.
STATES = (
    ("paid", 0.86),
    ("partially_refunded", 0.03),
    ("refunded", 0.03),
    ("expired", 0.04),
    ("cancelled", 0.03),
    ("failed", 0.01),
)
SETTLED = {"paid", "partially_refunded", "refunded"}
AMOUNTS = (45_00, 60_00, 85_00, 95_00, 120_00, 150_00, 210_00)
DESCRIPTIONS = (
    "Consultation",
    "Standard consultation, 15 min",
    "Long consultation, 40 min",
    "Follow-up consultation",
    "Script renewal",
    'Mental health plan review ("MHCP")',
    "Telehealth consult — after hours",
    "Специјалистички преглед",
    "Physiotherapy session",
    "Referral letter",
)
FIRST_NAMES = (
    "Olivia", "Jack", "Charlotte", "Noah", "Amelia", "William", "Isla", "Oliver", "Mia",
    "Thomas", "Ava", "James", "Grace", "Lucas", "Chloe", "Henry", "Zoe", "Ethan", "Ruby",
    "Leo", "Aarav", "Mei", "Nguyen", "Fatima", "Мирослав",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Jones", "Williams", "Brown", "Wilson", "Taylor", "Nguyen", "Johnson", "Martin",
    "White", "Anderson", "Walker", "Thompson", "Harris", "Lee", "Ryan", "Robinson", "Kelly",
    "King", "Davis", "Wright", "Patel", "Singh", "Chen", "Петровић",
)  # fmt: skip


# -- the database ------------------------------------------------------------------------------


def environment(database_url: str) -> Path:
    """vcpay's settings for this process and the export's: the scratch database, an instance
    folder of its own, nothing shared (no Redis: the limiter counts in memory)."""
    for name in [n for n in os.environ if n.startswith("VCPAY_")]:
        del os.environ[name]
    os.environ.update(
        VCPAY_DATABASE_URL=database_url,
        VCPAY_INSTANCE_PATH=tempfile.mkdtemp(prefix="vcpay-bench-backoffice-"),
        VCPAY_SECRET_KEY=secrets.token_urlsafe(32),
        VCPAY_CELERY_BROKER_URL="memory://",
        VCPAY_LOG_LEVEL="WARNING",
    )
    return Path(os.environ["VCPAY_INSTANCE_PATH"])


def application():
    from vcpay import create_app

    return create_app()


def migrate(app) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))


def seed(app, payments: int) -> dict:
    """The demo people, the GP clinic in Sydney, calls, payments and payouts; then VACUUM
    ANALYZE. Returns how long each part took."""
    from vcpay.extensions import db
    from vcpay.people.demo import seed_demo
    from vcpay.people.services import find_user_by_email

    timings = {}
    started = time.perf_counter()
    with app.app_context():
        organisation = seed_demo(enable_gateway=True)
        clinic = next(c for c in organisation.clinics if c.name == GP_CLINIC)
        clinic.time_zone = ZONE
        clinician = find_user_by_email("clinician@harbourside.example")
        db.session.commit()
        now = datetime.now(UTC)
        moments = two_years_of(payments, now)
        raw = db.engine.raw_connection()
        try:
            connection = raw.driver_connection
            call_ids = write_calls(connection, clinic.id, clinician.id, moments[0])
            first_id = write_payments(connection, clinic.id, clinician.id, call_ids, moments)
            write_payouts(connection, now)
            connection.commit()
        finally:
            raw.close()
        timings["insert_s"] = round(time.perf_counter() - started, 1)
        vacuumed = time.perf_counter()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as autocommit:
            autocommit.execute(text("VACUUM ANALYZE"))
        timings["vacuum_analyze_s"] = round(time.perf_counter() - vacuumed, 1)
        db.engine.dispose()
    timings["first_id"] = first_id
    return timings


def two_years_of(count: int, now: datetime) -> list[datetime]:
    """``count`` moments over the last two years, oldest first, in clinic hours (Sydney
    8:00 to 19:00 is 21:00 to 08:00 UTC, give or take daylight saving)."""
    rng = random.Random(13)  # noqa: S311 - made-up payments, not secrets
    start = now - timedelta(days=730)
    moments = []
    for _ in range(count):
        day = start + timedelta(days=rng.randrange(730))
        at = day.replace(hour=21, minute=0, second=0, microsecond=0)
        moments.append(at + timedelta(seconds=rng.randrange(11 * 3600)))
    moments.sort()
    return [min(m, now - timedelta(minutes=1)) for m in moments]


def write_calls(connection, clinic_id: int, clinician_id: int, since: datetime) -> list[int]:
    """2,000 ended calls; each payment goes to one of them (the foreign key needs a call)."""
    rows = [
        (clinic_id, clinician_id, f"Patient {n}", secrets.token_urlsafe(32), "ended", since)
        for n in range(2000)
    ]
    with connection.cursor() as cursor:
        with cursor.copy(
            "COPY calls (clinic_id, clinician_id, title, guest_token, state, created_at) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute("SELECT id FROM calls ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


PAYMENT_COLUMNS = (
    "request_key", "call_id", "clinic_id", "requested_by_id", "amount", "currency",
    "description", "state", "created_at", "updated_at", "stripe_account_id",
    "checkout_session_id", "checkout_url", "expires_at", "payment_intent_id", "charge_id",
    "stripe_fee", "paid_at", "patient_name", "patient_email", "patient_locale",
    "receipt_number", "card_brand", "card_last4", "amount_refunded", "last_decline",
)  # fmt: skip


def payment_row(n: int, at: datetime, call_id: int, clinic_id: int, clinician_id: int, rng):
    state = rng.choices([s for s, _ in STATES], [w for _, w in STATES])[0]
    settled = state in SETTLED
    amount = rng.choice(AMOUNTS)
    refunded = {"refunded": amount, "partially_refunded": amount // 2}.get(state, 0)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    email = f"{first}.{last}{n % 97}@example.org".lower() if last.isascii() else f"p{n}@example.org"
    return (
        f"bench{n:08d}", call_id, clinic_id, clinician_id, amount, "aud",
        rng.choice(DESCRIPTIONS), state, at, at, "acct_bench_gp",
        f"cs_bench_{n:08d}", "https://checkout.example/bench", at + timedelta(hours=1),
        f"pi_bench_{n}" if settled else None, f"ch_bench_{n}" if settled else None,
        amount * 17 // 1000 + 30 if settled else None,
        at + timedelta(minutes=rng.randrange(1, 30)) if settled else None,
        f"{first} {last}", email, "en",
        f"{1000 + n // 10_000}-{n % 10_000:04d}" if settled else "",
        "visa" if settled else "", f"{n % 10_000:04d}" if settled else "", refunded, "",
    )  # fmt: skip


def write_payments(connection, clinic_id, clinician_id, call_ids, moments) -> int:
    """Every payment with one COPY, oldest first (ids then grow with time, as they do)."""
    rng = random.Random(2026)  # noqa: S311 - made-up payments, not secrets
    with connection.cursor() as cursor:
        with cursor.copy(
            f"COPY payment_requests ({', '.join(PAYMENT_COLUMNS)}) FROM STDIN"
        ) as copy:
            for n, at in enumerate(moments):
                call_id = call_ids[n * len(call_ids) // len(moments)]
                copy.write_row(payment_row(n, at, call_id, clinic_id, clinician_id, rng))
        return cursor.execute("SELECT min(id) FROM payment_requests").fetchone()[0]


def write_payouts(connection, now: datetime) -> None:
    """A payout every week, holding the charge of each payment settled that week, as vcpay
    keeps them once it has read a payout's balance transactions."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO payouts (stripe_account_id, payout_id, amount, currency, status,
                                 arrival_date, created, failure_message, contents_read_at,
                                 updated_at)
            SELECT 'acct_bench_gp', 'po_bench_' || week, 0, 'aud', 'paid',
                   %(now)s - (week - 1) * interval '7 days',
                   %(now)s - week * interval '7 days' + interval '2 days', '', %(now)s, %(now)s
            FROM generate_series(1, 106) AS week
            """,
            {"now": now},
        )
        cursor.execute(
            """
            INSERT INTO payout_transactions (payout_row_id, balance_transaction_id, type,
                                             reporting_category, amount, fee, net, currency,
                                             source_id, payment_request_id, description, created)
            SELECT payouts.id, 'txn_' || p.charge_id, 'charge', 'charge', p.amount,
                   p.stripe_fee, p.amount - p.stripe_fee, 'aud', p.charge_id, p.id,
                   p.description, p.paid_at
            FROM payment_requests p
            JOIN payouts ON payouts.payout_id = 'po_bench_'
                 || (floor(extract(epoch FROM (%(now)s - p.paid_at)) / 604800)::int + 1)
            WHERE p.paid_at < %(now)s - interval '7 days'
            """,
            {"now": now},
        )
        cursor.execute(
            "UPDATE payouts SET amount = coalesce((SELECT sum(net) FROM payout_transactions t "
            "WHERE t.payout_row_id = payouts.id), 0)"
        )


def payment_count(app) -> int:
    from vcpay.extensions import db

    with app.app_context():
        count = db.session.scalar(text("SELECT count(*) FROM payment_requests"))
        db.session.remove()
        return count or 0


# -- a signed-in clinic admin ------------------------------------------------------------------


def signed_in(app, email: str = CLINIC_ADMIN):
    client = app.test_client()
    page = client.get("/sign-in").get_data(as_text=True)
    token = CSRF_FIELD.search(page).group(1)
    answer = client.post(
        "/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    if answer.status_code not in (302, 303):
        raise RuntimeError(f"signing in as {email} answered {answer.status_code}")
    return client


def timed_get(client, path: str) -> float:
    started = time.perf_counter()
    answer = client.get(path)
    answer.get_data()
    elapsed = time.perf_counter() - started
    if answer.status_code != 200:
        raise RuntimeError(f"GET {path} answered {answer.status_code}")
    return elapsed


# -- what is measured --------------------------------------------------------------------------


def deep_cursor(app, page_number: int) -> tuple[str, int]:
    """The cursor of the link to page ``page_number``, found as a reader finds it: page by
    page, each starting where the one before ended. Also the number of pages walked."""
    from vcpay.extensions import db
    from vcpay.ledger import keyset
    from vcpay.ledger.filters import read_filter
    from vcpay.ledger.listing import page_of
    from vcpay.people.services import find_user_by_email

    with app.test_request_context():
        ledger = read_filter(find_user_by_email(CLINIC_ADMIN), EVERY_DAY)
        position, walked = None, 0
        while walked < page_number - 1:
            page = page_of(ledger, position)
            if page.older is None:
                break
            position, walked = page.older, walked + 1
        cursor = keyset.encode(position)
        db.session.remove()
    return cursor, walked + 1


def search_paths(app) -> dict[str, str]:
    """The filtered search (a surname, paid, the last year) and a search for one receipt."""
    from zoneinfo import ZoneInfo

    from vcpay.extensions import db

    today = datetime.now(ZoneInfo(ZONE)).date()
    year_ago = today - timedelta(days=365)
    with app.app_context():
        receipt = db.session.scalar(
            text(
                "SELECT receipt_number FROM payment_requests WHERE receipt_number <> '' "
                "ORDER BY id LIMIT 1 OFFSET (SELECT count(*) / 3 FROM payment_requests)"
            )
        )
        db.session.remove()
    return {
        "search": f"/payments/?q=smith&status=settled&from={year_ago}&to={today}",
        "search_one": f"/payments/?from=&to=&q={receipt}",
    }


def time_totals(app, args: dict[str, str]) -> float:
    from vcpay.extensions import db
    from vcpay.ledger.filters import read_filter
    from vcpay.ledger.takings import totals_and_takings
    from vcpay.people.services import find_user_by_email

    with app.test_request_context():
        ledger = read_filter(find_user_by_email(CLINIC_ADMIN), args)
        started = time.perf_counter()
        totals_and_takings(ledger)
        elapsed = time.perf_counter() - started
        db.session.remove()
    return elapsed


def time_select_one(app) -> float:
    from vcpay.extensions import db

    with app.app_context():
        started = time.perf_counter()
        db.session.execute(text("SELECT 1")).scalar()
        elapsed = time.perf_counter() - started
        db.session.remove()
    return elapsed


def query_args(path: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))


def measure_pages(app, rounds: int, deep_page: int) -> tuple[dict, dict]:
    client = signed_in(app)
    cursor, deep_page = deep_cursor(app, deep_page)
    paths = {
        "baseline_page": "/settings",
        "first_page": "/payments/",
        "first_page_all": "/payments/?from=&to=",
        "deep_page": f"/payments/?from=&to=&after={cursor}",
        **search_paths(app),
    }
    search_args = query_args(paths["search"])
    samples: dict[str, list[float]] = {
        name: [] for name in [*paths, "select_1", "totals", "totals_all", "totals_search"]
    }
    for number in range(WARM_UP_ROUNDS + rounds):
        measured = {name: timed_get(client, path) for name, path in paths.items()}
        measured["select_1"] = time_select_one(app)
        measured["totals"] = time_totals(app, {})
        measured["totals_all"] = time_totals(app, EVERY_DAY)
        measured["totals_search"] = time_totals(app, search_args)
        if number >= WARM_UP_ROUNDS:
            for name, seconds in measured.items():
                samples[name].append(seconds)
    facts = {"deep_page_number": deep_page, "paths": paths}
    return {name: summary_ms(values) for name, values in samples.items()}, facts


def plans(app, deep_cursor_text: str, paths: dict[str, str]) -> dict[str, str]:
    """EXPLAIN ANALYZE of the queries behind the measured pages, sent with their values as
    parameters, as the application sends them (with the values written inline, PostgreSQL
    can estimate differently and choose another plan)."""
    from sqlalchemy import func, select

    from vcpay.extensions import db
    from vcpay.ledger import keyset
    from vcpay.ledger.filters import read_filter
    from vcpay.ledger.listing import _keys, selected
    from vcpay.payments.models import PaymentRequest
    from vcpay.people.services import find_user_by_email

    found = {}
    with app.test_request_context():
        admin = find_user_by_email(CLINIC_ADMIN)
        ledger = read_filter(admin, EVERY_DAY)
        recent = read_filter(admin, {})
        position = keyset.decode(deep_cursor_text)
        searched = read_filter(admin, query_args(paths["search"]))
        one = read_filter(admin, query_args(paths["search_one"]))
        statements = {
            "first_page": _keys(recent, None, PAGE_SIZE + 1, newer=False),
            "first_page_all": _keys(ledger, None, PAGE_SIZE + 1, newer=False),
            "deep_page": _keys(ledger, position, PAGE_SIZE + 1, newer=False),
            "search": _keys(searched, None, PAGE_SIZE + 1, newer=False),
            "search_one": _keys(one, None, PAGE_SIZE + 1, newer=False),
            "totals": select(func.count(PaymentRequest.id)).where(selected(recent)),
            "totals_all": select(func.count(PaymentRequest.id)).where(selected(ledger)),
            "totals_search_one": select(func.count(PaymentRequest.id)).where(selected(one)),
        }
        connection = db.session.connection()
        for name, statement in statements.items():
            compiled = statement.compile(db.engine, compile_kwargs={"render_postcompile": True})
            values = {
                key: [str(item) for item in value] if isinstance(value, list) else value
                for key, value in compiled.construct_params().items()
            }
            rows = connection.exec_driver_sql(
                f"EXPLAIN (ANALYZE, BUFFERS) {compiled}", values
            )  # fmt: skip
            found[name] = "\n".join(row[0] for row in rows)
        db.session.remove()
    return found


def reads_the_index(plan: str) -> bool:
    return KEYSET_INDEX in plan and "Seq Scan on payment_requests" not in plan


# -- the export, in a process of its own -------------------------------------------------------


def memory_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_memory() -> bool:
    """Linux resets VmHWM to the current RSS when 5 is written to clear_refs."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def read_export(client, path: str) -> tuple[int, int]:
    """Rows and bytes of a streamed export, each chunk dropped once counted."""
    answer = client.get(path, buffered=False)
    if answer.status_code != 200:
        raise RuntimeError(f"GET {path} answered {answer.status_code}")
    lines = size = 0
    try:
        for chunk in answer.response:
            data = chunk if isinstance(chunk, bytes) else chunk.encode()
            lines += data.count(b"\r\n")
            size += len(data)
    finally:
        answer.close()
    return lines - 1, size  # less the header line


def export_child() -> None:
    """Run by ``export_in_fresh_process``: prints one JSON object."""
    from zoneinfo import ZoneInfo

    app = application()
    client = signed_in(app)
    today = datetime.now(ZoneInfo(ZONE)).date()
    client.get("/payments/").get_data()
    read_export(client, f"/payments/export.csv?from={today}&to={today}")
    gc.collect()
    idle_kb = memory_kb("VmRSS")
    reset = reset_peak_memory()
    started = time.perf_counter()
    rows, size = read_export(client, "/payments/export.csv?from=&to=")
    seconds = time.perf_counter() - started
    peak_kb = memory_kb("VmHWM")
    print(
        json.dumps(
            {
                "rows": rows,
                "bytes": size,
                "seconds": round(seconds, 2),
                "rows_per_second": round(rows / seconds),
                "idle_rss_mb": round(idle_kb / 1024, 1),
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "peak_above_idle_mb": round((peak_kb - idle_kb) / 1024, 1),
                "peak_reset_before_export": reset,
            }
        )
    )


def export_in_fresh_process() -> dict:
    answer = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--export-child"],
        cwd=ROOT, capture_output=True, text=True, check=False, env=os.environ.copy(),
    )  # fmt: skip
    if answer.returncode != 0:
        raise RuntimeError(f"the export process failed:\n{answer.stderr[-4000:]}")
    return json.loads(answer.stdout.strip().splitlines()[-1])


# -- the run -----------------------------------------------------------------------------------


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def run(args: argparse.Namespace) -> dict:
    instance = environment(args.database_url)
    summary: dict = {"load_before": load_average()}
    if not args.reuse:
        recreate_database(args.database_url)
    app = application()
    try:
        migrate(app)  # on a database kept from an earlier run, brings it up to date
        if not args.reuse:
            summary["seeding"] = seed(app, args.payments)
            print(f"  seeded in {summary['seeding']}", flush=True)
        payments = payment_count(app)
        deep_page = min(DEEP_PAGE, payments // PAGE_SIZE)
        timings, facts = measure_pages(app, args.rounds, deep_page)
        print("  pages measured", flush=True)
        found = plans(app, query_args(facts["paths"]["deep_page"])["after"], facts["paths"])
        summary["export"] = export_in_fresh_process()
        summary["load_after"] = load_average()
        database = database_version(args.database_url)
    finally:
        from vcpay.extensions import db

        with app.app_context():
            db.engine.dispose()
        app.extensions["call_waker"].stop()
        shutil.rmtree(instance, ignore_errors=True)
        if not args.keep:
            drop_database(args.database_url)
    if args.verbose:
        for name, plan in found.items():
            print(f"\n-- EXPLAIN ANALYZE, {name}\n{plan}")
    summary.update(
        payments=payments,
        rounds=args.rounds,
        client="Flask test client, in process (no HTTP)",
        timings=timings,
        deep_page_number=facts["deep_page_number"],
        searches={k: v for k, v in facts["paths"].items() if k.startswith("search")},
        index_read={
            name: reads_the_index(found[name])
            for name in ("first_page", "first_page_all", "deep_page")
        },
        trigram_index_read={
            name: TRIGRAM_INDEX in found[name] for name in ("search_one", "totals_search_one")
        },
        goals=goals(timings, summary["export"]),
        database=database,
        machine=machine(),
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return summary


# What the goal of p95 <= 100 ms is set for; the one-receipt search is reported, as the worst
# case of a search, but the issue sets no goal for it.
GOAL_PAGES = ("first_page", "first_page_all", "deep_page", "search", "totals", "totals_all")


def goals(timings: dict, export: dict) -> dict:
    met = {
        f"{name}_p95_le_100_ms": timings[name]["p95_ms"] <= GOAL_PAGE_P95_MS for name in GOAL_PAGES
    }
    met["export_peak_le_50_mb_above_idle"] = export["peak_above_idle_mb"] <= GOAL_EXPORT_MB
    met["export_ge_20000_rows_per_s"] = export["rows_per_second"] >= GOAL_ROWS_PER_SECOND
    return met


def print_table(summary: dict) -> None:
    timings, baseline = summary["timings"], summary["timings"]["baseline_page"]["p95_ms"]
    names = {
        "select_1": "SELECT 1 (baseline)",
        "baseline_page": "GET /settings (baseline)",
        "first_page": "first page (the last 30 days)",
        "first_page_all": "first page, every day",
        "deep_page": f"page {summary['deep_page_number']} (keyset)",
        "search": "filtered search (smith, paid, last year)",
        "search_one": "search for one receipt number",
        "totals": "totals and takings, the last 30 days",
        "totals_all": "totals and takings, every day",
        "totals_search": "totals and takings, filtered search",
    }
    print(f"\n{summary['payments']:,} payments, {summary['rounds']} rounds, {summary['database']}")
    print(f"{'what':<44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'p95 x /settings':>16}")
    for name, label in names.items():
        t = timings[name]
        ratio = t["p95_ms"] / baseline if baseline else 0
        print(f"{label:<44} {t['p50_ms']:>8} {t['p95_ms']:>8} {t['max_ms']:>8} {ratio:>16.2f}")
    export = summary["export"]
    print(
        f"\nexport: {export['rows']:,} rows in {export['seconds']} s = "
        f"{export['rows_per_second']:,} rows/s; RSS idle {export['idle_rss_mb']} MB, peak "
        f"{export['peak_rss_mb']} MB ({export['peak_above_idle_mb']} MB above idle)"
    )
    print(f"index read: {summary['index_read']}; trigram: {summary['trigram_index_read']}")
    print(f"goals: {summary['goals']}")
    print(f"load average: {summary['load_before']} before, {summary['load_after']} after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--payments", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--keep", action="store_true", help="leave the database")
    parser.add_argument("--reuse", action="store_true", help="measure a database left by --keep")
    parser.add_argument("--verbose", action="store_true", help="print the query plans")
    parser.add_argument("--export-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.export_child:
        export_child()
        return
    args.payments = args.payments or (5_000 if args.quick else 100_000)
    args.rounds = args.rounds or (15 if args.quick else 50)
    summary = run(args)
    print_table(summary)
    save(summary, "back_office_quick" if args.quick else "back_office")


if __name__ == "__main__":
    main()
