"""Shared steps of the browser journeys through `make run`, on both shapes of the product.

Every journey runs twice: embedded (SQLite, the file-system broker, call screens woken by
polling) and in the production shape (PostgreSQL, Redis as the broker and for the call
screens' wake-ups), each time with the web server, Celery worker and beat `make run` starts.
One product per shape serves all the journeys; each makes a practice of its own in it, so no
journey depends on another or on the order they run in.
"""

import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import pytest
import requests

from sandbox.stripe.control_client import StripeControl
from tests.processes import running_product
from tests.services import redis_url, scratch_postgres_database
from vcpay import create_app
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.people.demo import DEMO_PASSWORD
from vcpay.people.models import Clinic, ClinicRole, Organisation, User
from vcpay.people.services import (
    add_clinic_role,
    add_organisation_admin,
    create_user,
    hash_password,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Short intervals so workers act within seconds of what the journey does.
# Each journey's browser is new to its people: their sign-in emails are not what they check.
JOURNEY_SETTINGS = {
    "VCPAY_JIRA_POLL_SECONDS": "2",
    "VCPAY_HEARTBEAT_SECONDS": "5",
    "VCPAY_NEW_BROWSER_EMAILS": "0",
}
SHAPES = ("embedded", "postgresql-redis")


@contextmanager
def shape_settings(shape: str) -> Iterator[dict[str, str]]:
    """What `make run` is given for a shape. The production shape needs PostgreSQL and Redis:
    without them its journeys skip and say why (and fail in CI)."""
    if shape == "embedded":
        yield {}
        return
    redis = redis_url()
    with scratch_postgres_database() as database_url:
        yield {
            "VCPAY_DATABASE_URL": database_url,
            "VCPAY_CELERY_BROKER_URL": redis,
            "VCPAY_REDIS_URL": redis,
        }


# What each shape's web server says of Redis, and the transport its worker reports.
REDIS_HEALTH = {"embedded": "not configured", "postgresql-redis": "ok"}
WORKER_TRANSPORT = {
    "embedded": "workers.filesystem:Transport://",
    "postgresql-redis": "workers.redis:Transport://",
}


def assert_runs_as(product: dict, shape: str) -> None:
    """The web server and the worker use the shape's own services."""
    health = requests.get(f"{product['url']}/healthz", timeout=5).json()
    assert (health["redis"], health["broker"]) == (REDIS_HEALTH[shape], "ok"), health
    transport = re.escape(WORKER_TRANSPORT[shape])
    log = product["log"].read_text(errors="replace")
    assert re.search(rf"transport:\s+{transport}", log), f"the worker is not on {transport}"


@pytest.fixture(scope="session", params=SHAPES)
def journey_product(request, tmp_path_factory):
    """One `make run` per shape for every journey. The journeys run last, grouped by shape,
    so one product runs at a time and only while journeys do."""
    instance = tmp_path_factory.mktemp(f"instance-{request.param}")
    with (
        shape_settings(request.param) as settings,
        running_product(instance, **JOURNEY_SETTINGS, **settings) as started,
    ):
        started["shape"] = request.param
        started["database_url"] = settings.get(
            "VCPAY_DATABASE_URL", f"sqlite:///{instance / 'vcpay.sqlite'}"
        )
        assert_runs_as(started, request.param)
        yield started


@dataclass(frozen=True)
class Practice:
    """A journey's own organisation in the running product: one clinic, one person per role
    (all with the demo password), a patient, and the clinic's own Stripe test account."""

    token: str
    account_id: str = ""

    @property
    def organisation(self) -> str:
        return f"Journey {self.token} Health"

    @property
    def clinic(self) -> str:
        return f"Journey {self.token} Clinic"

    @property
    def account_name(self) -> str:
        return f"{self.clinic} Pty Ltd"

    def email(self, role: str) -> str:
        return f"{role}-{self.token}@journeys.example"

    @property
    def manager(self) -> str:
        return self.email("manager")

    @property
    def org_admin(self) -> str:
        return self.email("orgadmin")

    @property
    def clinic_admin(self) -> str:
        return self.email("clinicadmin")

    @property
    def clinician(self) -> str:
        return self.email("clinician")

    @property
    def patient(self) -> str:
        return f"patient-{self.token}@example.org"


def new_practice(product: dict, gateway_on: bool) -> Practice:
    """A practice of the journey's own, its gateway on (as an approved request leaves it) or
    off (to be requested)."""
    practice = Practice(secrets.token_hex(4))
    account = StripeControl(product["stripe_url"]).account(business_name=practice.account_name)
    practice = replace(practice, account_id=account)
    _store_practice(product["database_url"], practice, gateway_on)
    return practice


@cache
def _password_hash() -> str:
    return hash_password(DEMO_PASSWORD)  # slow by design: once for every journey person


def _person(email: str, name: str) -> User:
    person = create_user(
        email, name, DEMO_PASSWORD, phone="+61 2 5550 0100", password_hash=_password_hash()
    )
    # Like the demo seed's people: password alone on the local demo `make run` serves.
    person.two_factor_exempt = True
    return person


def _store_practice(database_url: str, practice: Practice, gateway_on: bool) -> None:
    """Written straight into the product's database, as its own seed command would."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "CELERY_BROKER_URL": "memory://",
            "REDIS_URL": "",
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    try:
        with app.app_context():
            organisation = Organisation(name=practice.organisation)
            clinic = Clinic(
                organisation=organisation,
                name=practice.clinic,
                gateway_enabled_at=utcnow() if gateway_on else None,
            )
            db.session.add_all([organisation, clinic])
            manager = _person(practice.manager, "Morgan Lee")
            org_admin = _person(practice.org_admin, "Alex Chen")
            add_organisation_admin(manager, organisation, telehealth_manager=True)
            add_organisation_admin(org_admin, organisation)
            add_clinic_role(
                _person(practice.clinic_admin, "Sam Patel"), clinic, ClinicRole.CLINIC_ADMIN
            )
            add_clinic_role(
                _person(practice.clinician, "Dr Jordan Rivers"), clinic, ClinicRole.CLINICIAN
            )
            db.session.commit()
            db.engine.dispose()
    finally:
        app.extensions["call_waker"].stop()


def signed_in(browser, product, email: str, next_path: str = "/"):
    page = browser.new_context().new_page()
    page.goto(f"{product['url']}/sign-in?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return page


def save_screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def emails_to(product, address: str) -> list[dict]:
    catcher = product["catcher_url"]
    listing = requests.get(f"{catcher}/api/messages", params={"to": address}, timeout=5).json()
    return [requests.get(f"{catcher}/api/messages/{m['id']}", timeout=5).json() for m in listing]


def reload_until(page, text: str, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while text not in page.content():
        assert time.monotonic() < deadline, f"'{text}' did not appear on {page.url}"
        time.sleep(0.5)
        page.reload()


# -- steps in a call, shared by the journeys that take a payment ----------------------------


def link_stripe(browser, product, practice) -> None:
    admin = signed_in(browser, product, practice.clinic_admin, "/client-payments/")
    admin.get_by_role("link", name=practice.clinic).first.click()
    admin.get_by_role("button", name="Go to Stripe").click()
    admin.get_by_label(f"{practice.account_name} ({practice.account_id})").check()
    admin.get_by_role("button", name="Connect my Stripe account").click()
    admin.wait_for_url(re.compile(r".*/client-payments/clinics/\d+$"))
    reload_until(admin, 'Card payments</dt>\n    <dd><span class="badge on">Enabled')
    admin.context.close()


def pay_on_checkout(checkout, card: str, email: str) -> None:
    checkout.get_by_label("Email").fill(email)
    checkout.get_by_label("Card number").fill(card)
    checkout.get_by_label("Expiry").fill("12 / 34")
    checkout.get_by_label("CVC").fill("123")
    checkout.get_by_label("Name on card").fill("Pat Citizen")
    checkout.get_by_role("button", name=re.compile(r"^Pay ")).click()


def request_payment(clinician, amount: str, description: str) -> None:
    if (
        clinician.get_by_role("button", name="Apps & Tools").get_attribute("aria-expanded")
        != "true"
    ):
        clinician.get_by_role("button", name="Apps & Tools").click()
    clinician.get_by_label("Amount (A$)").fill(amount)
    clinician.get_by_label("Description").fill(description)
    clinician.get_by_role("button", name="Request Payment").click()
