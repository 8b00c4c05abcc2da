"""The demo's past, for ``make run``: four weeks of the GP clinic's payments, the same every
time for the same day, written into its account at the Stripe stand-in and then, from the
stand-in's answer, into vcpay (``flask --app wsgi demo-history``).

Weekdays only, two to six payments a day in the clinic's hours; about one in ten refunded in
part or whole, a few declined before they were paid, a few never paid (expired or cancelled).
Patients' names are in several languages, one with a comma and quotes, so the CSV export
has something to get right.
"""

import json
import random
import subprocess  # nosec B404  # the product's own fixed command, no shell
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.stripe.accounts import DEMO_ACCOUNTS
from sandbox.stripe.control_client import StripeControl

WEEKS = 4
CLINIC_TIME = ZoneInfo("Australia/Sydney")  # the stand-in's demo accounts are Australian
SEED = 13  # the same history for the same day
DONE = "demo-history.json"  # in the instance folder: the history is written once per folder
FEES = (
    ("Standard consultation", 8500),
    ("Standard consultation", 8500),
    ("Long consultation", 12000),
    ("Mental health plan review", 26000),
    ("Telehealth follow-up", 4500),
    ('Care plan review, "GPMP"', 14500),
)
# (name, email, the language they pay in)
PATIENTS = (
    ("Jelena Petrović", "jelena.petrovic@example.org", "sr_Latn"),
    ("Марко Јовановић", "marko.jovanovic@example.org", "sr_Cyrl"),
    ("Liam O'Brien", "liam.obrien@example.org", ""),
    ("Nguyễn Thị Mai", "mai.nguyen@example.org", ""),
    ('Chloe "Coco" Martin, Jr.', "chloe.martin@example.org", ""),
    ("Aarav Sharma", "aarav.sharma@example.org", ""),
    ("Sophie Williams", "sophie.williams@example.org", ""),
    ("Ahmed Hassan", "ahmed.hassan@example.org", ""),
    ("Isabella Rossi", "isabella.rossi@example.org", ""),
    ("Јована Николић", "jovana.nikolic@example.org", "sr_Cyrl"),
    ("Oliver Brown", "oliver.brown@example.org", ""),
    ("Wiremu Te Awa", "wiremu.teawa@example.org", ""),
)
DECLINED_CARDS = ("4000000000000002", "4000000000009995")


@dataclass(frozen=True)
class PlannedPayment:
    """One payment for the stand-in, and what only vcpay knows of it."""

    stripe: dict[str, Any]
    vcpay: dict[str, Any]


def clinic_moment(day: date, rng: random.Random) -> int:
    """A time in the clinic's hours, 8:30 to 17:30 its time."""
    minutes = rng.randrange(8 * 60 + 30, 17 * 60 + 30)
    local = datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=CLINIC_TIME)
    return int(local.timestamp())


def _refunds(rng: random.Random, amount: int, paid: int, now: int) -> list[dict[str, Any]]:
    if rng.random() >= 0.1:
        return []
    created = min(paid + rng.randrange(3600, 3 * 86400), now - 3600)
    whole = rng.random() < 0.4
    return [
        {
            "amount": amount if whole else amount // 2,
            "created": created,
            "reason": "duplicate" if whole and rng.random() < 0.5 else "requested_by_customer",
        }
    ]


def planned_payment(key: str, created: int, rng: random.Random, now: int) -> PlannedPayment:
    description, amount = rng.choice(FEES)
    name, email, locale = rng.choice(PATIENTS)
    stripe: dict[str, Any] = {
        "key": key,
        "amount": amount,
        "description": description,
        "email": email,
        "name": name,
        "created": created,
        "card": "5555" if rng.random() < 0.25 else "4242",
    }
    vcpay: dict[str, Any] = {"patient_name": name, "patient_locale": locale}
    fate = rng.random()
    if fate < 0.05:
        stripe["outcome"] = "expired"
    elif fate < 0.08:
        stripe["outcome"] = "expired"  # on Stripe a cancelled request is an expired session
        vcpay["ended"] = "cancelled"
    else:
        if fate < 0.14:
            stripe["declined_card"] = rng.choice(DECLINED_CARDS)
        stripe["refunds"] = _refunds(rng, amount, created, now)
    return PlannedPayment(stripe, vcpay)


def plan_history(today: date, now: int, weeks: int = WEEKS) -> list[PlannedPayment]:
    """The weekdays of the last ``weeks`` weeks before ``today``, oldest first."""
    rng = random.Random(f"{SEED}-{today.isoformat()}")  # noqa: S311  # nosec B311  # demo data
    planned = []
    for back in range(weeks * 7, 0, -1):
        day = today - timedelta(days=back)
        if day.weekday() >= 5:
            continue
        moments = sorted(clinic_moment(day, rng) for _ in range(rng.randint(2, 6)))
        for number, created in enumerate(moments):
            key = f"demo-{day.isoformat()}-{number}"
            planned.append(planned_payment(key, created, rng, now))
    return planned


def demo_account(stripe: StripeControl) -> str | None:
    """The GP clinic's test account, made by the stand-in's ``--demo-accounts``."""
    name = DEMO_ACCOUNTS[0][0]
    accounts = stripe.accounts().values()
    return next((a["id"] for a in accounts if a["business_profile"]["name"] == name), None)


def for_vcpay(answer: dict[str, Any], planned: list[PlannedPayment]) -> dict[str, Any]:
    """The stand-in's answer, each payment with what only vcpay knows of it."""
    for payment in planned:
        answer["payments"][payment.stripe["key"]].update(payment.vcpay)
    return answer


def write_demo_history(stripe_url: str, instance_path: str) -> str:
    """Once per instance folder: the history at the stand-in, then in vcpay. What happened,
    in a line for the terminal."""
    done = Path(instance_path) / DONE
    if done.exists():
        return "Past payments: written on an earlier start."
    stripe = StripeControl(stripe_url, timeout=60)
    account = demo_account(stripe)
    if account is None:
        return "Past payments: the stand-in has no GP clinic account; none written."
    now = int(time.time())
    planned = plan_history(datetime.now(CLINIC_TIME).date(), now)
    answer = stripe.write_history(account, [p.stripe for p in planned])
    for_product = json.dumps(for_vcpay(answer, planned))
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "demo-history"]
    written = subprocess.run(  # noqa: S603  # nosec B603
        command, input=for_product, text=True, capture_output=True, check=False
    )
    if written.returncode != 0:
        return f"Past payments not written: {written.stderr.strip() or written.stdout.strip()}"
    done.write_text(for_product, encoding="utf-8")
    return written.stdout.strip()
