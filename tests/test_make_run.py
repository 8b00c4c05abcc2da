"""The first of the two commands: `make run` starts everything, each demo person signs in.

This starts the real product (gunicorn, a Celery worker and beat) exactly as a person does,
drives it with Chromium, then stops it with Ctrl-C.
"""

import signal
import subprocess
import sys
import time

import pytest

from sandbox.stripe.control_client import StripeControl
from tests.conftest import ARTIFACTS
from tests.processes import (
    ROOT,
    alive_in_sessions,
    port_open,
    product_environment,
    running_product,
    sessions_below,
    stop_group,
    wait_for,
)
from vcpay.people.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser

# What the navigation shows, then what its Configure menu holds once opened.
ADMIN_NAVIGATION = (["Home", "Payments", "Configure"], ["Client Payments", "Team", "Audit log"])
NAVIGATION = {
    "manager@harbourside.example": ADMIN_NAVIGATION,
    "orgadmin@harbourside.example": ADMIN_NAVIGATION,
    "clinicadmin@harbourside.example": ADMIN_NAVIGATION,
    "clinician@harbourside.example": (["Home", "Calls", "Payments"], []),
}


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    with running_product(tmp_path_factory.mktemp("instance")) as started:
        yield started


def test_make_run_prints_the_url_and_every_demo_login(product):
    output = product["log"].read_text()
    assert product["startup_seconds"] < 120
    assert DEMO_PASSWORD in output
    for email in NAVIGATION:
        assert email in output
    assert "every 5 minutes (STRIPE_STANDIN_PAYOUT_SECONDS)" in output


def test_the_gp_clinic_has_weeks_of_past_payments_and_payouts(product):
    output = product["log"].read_text()
    stripe = StripeControl(product["stripe_url"])
    sessions = stripe.sessions()
    payouts = stripe.payouts()

    assert "past payments written, 0 kept" in output
    assert len(sessions) >= 40
    assert {s["account"] for s in sessions} == {p["account"] for p in payouts}
    assert len(payouts) >= 3
    assert all(p["created"] < time.time() for p in payouts)
    assert stripe.events(type="checkout.session.completed") == []


@pytest.mark.parametrize("email", list(NAVIGATION))
def test_each_demo_person_signs_in_and_sees_their_navigation(product, chromium, email):
    ARTIFACTS.mkdir(exist_ok=True)
    context = chromium.new_context()
    page = context.new_page()
    try:
        page.goto(f"{product['url']}/client-payments/")
        assert page.url.startswith(f"{product['url']}/sign-in")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        navigation = page.get_by_role("navigation", name="Main")
        shown, in_configure = NAVIGATION[email]
        # Only what shows: the Configure menu's links are hidden until it is opened.
        places = navigation.locator("a:visible, summary:visible").all_inner_texts()
        assert [text.strip() for text in places] == shown
        if in_configure:
            # The next page they asked for before signing in.
            assert page.url == f"{product['url']}/client-payments/"
            navigation.get_by_text("Configure").click()
            links = navigation.locator("details").get_by_role("link").all_inner_texts()
            assert [text.strip() for text in links] == in_configure
        page.screenshot(path=str(ARTIFACTS / f"make-run-{email.split('@')[0]}.png"), full_page=True)
    finally:
        context.close()


def test_a_wrong_password_shows_one_clear_message(product, chromium):
    page = chromium.new_page()
    page.goto(f"{product['url']}/sign-in")
    page.get_by_label("Email").fill("manager@harbourside.example")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    assert alert.inner_text().strip() == ("That email and password do not match an active account.")
    page.screenshot(path=str(ARTIFACTS / "make-run-wrong-password.png"))
    page.close()


def test_the_language_switcher_changes_the_page_language(product, chromium):
    page = chromium.new_page()
    page.goto(f"{product['url']}/sign-in")
    page.get_by_label("Language").select_option("sr_Latn")
    page.get_by_role("button", name="Change").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "sr-Latn"
    page.close()


# Every process `make run` starts, by a part of its command line.
DEMO_PROCESSES = (
    "gunicorn wsgi:app",
    "celery -A workers.main worker",
    "celery -A workers.main beat",
    "sandbox.jira",
    "sandbox.stripe",
    "sandbox.mail",
)


def test_ctrl_c_stops_the_web_server_worker_and_beat(product):
    process = product["process"]
    # By session, not by command line: a Celery worker's names neither instance nor port.
    sessions = sessions_below(process.pid)
    running = alive_in_sessions(sessions).values()
    for started in DEMO_PROCESSES:
        assert any(started in command for command in running), (started, running)

    stop_group(process, signal.SIGINT)
    assert process.returncode is not None
    wait_for(lambda: not port_open(product["port"]), 20, "the web server to stop")
    deadline = time.monotonic() + 30
    while (left := alive_in_sessions(sessions)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == {}
    assert ROOT.exists()


def test_reset_demo_after_make_run_starts_the_demo_afresh(product):
    """After Ctrl-C (the test above), reset-demo deletes what `make run` left in its instance
    folder: the database, the stand-ins' state, the caught email and the demo's past."""
    assert product["process"].returncode is not None, "make run is stopped by the test above"
    instance = product["log"].parent
    left_by_make_run = {"vcpay.sqlite", "stripe-standin.json", "demo-history.json", "mail"}
    assert left_by_make_run <= {path.name for path in instance.iterdir()}

    reset = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "reset-demo", "--yes"],
        cwd=ROOT,
        env=product_environment(
            VCPAY_INSTANCE_PATH=str(instance),
            VCPAY_PUBLIC_URL=product["url"],
            VCPAY_JIRA_URL=product["jira_url"],
            VCPAY_MAIL_CATCHER_URL=product["catcher_url"],
            VCPAY_STRIPE_API_BASE=product["stripe_url"],
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert reset.returncode == 0, reset.stderr
    remaining = {path.name for path in instance.iterdir()}
    assert remaining & (left_by_make_run - {"vcpay.sqlite"}) == set()
    assert not any(name.startswith(("jira-standin", "celerybeat-schedule")) for name in remaining)
    assert "Demo data ready: Harbourside Health" in reset.stdout
