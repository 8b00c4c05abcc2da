"""An admin who leaves vcpay open is warned before the sign-in ends, can stay, and is sent to
sign in again when the time is up, on `make run`, in Chromium.

The page's clock is Playwright's, moved on by the test; the server's is real, so the sign-in
is made to look idle by moving its last use back in the product's database.
"""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from tests.journeys import new_practice
from vcpay.people.demo import DEMO_PASSWORD

pytestmark = pytest.mark.browser

IDLE_MINUTES = 30  # the default, which `make run` keeps
WARNING = "you will be signed out in two minutes"


def age_sign_ins(database_url: str, email: str, by: timedelta) -> None:
    """Move the person's last use of vcpay back by ``by``, as if they had been away."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        for row in connection.execute(
            text(
                "SELECT s.id, s.last_seen_at FROM sign_in_sessions s JOIN users u "
                "ON u.id = s.user_id WHERE u.email = :email"
            ),
            {"email": email},
        ).all():
            last_seen = row.last_seen_at
            if isinstance(last_seen, str):  # SQLite hands back text
                last_seen = datetime.fromisoformat(last_seen)
            connection.execute(
                text("UPDATE sign_in_sessions SET last_seen_at = :at WHERE id = :id"),
                {"at": last_seen - by, "id": row.id},
            )
    engine.dispose()


def test_an_idle_admin_is_warned_can_stay_and_is_then_signed_out(journey_product, chromium):
    product = journey_product
    practice = new_practice(product, gateway_on=True)
    page = chromium.new_context().new_page()
    page.clock.install()
    page.goto(f"{product['url']}/sign-in?next=/settings")
    page.get_by_label("Email").fill(practice.clinic_admin)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your settings").wait_for()
    warning = page.get_by_role("alert").filter(has_text=WARNING)
    assert warning.is_hidden()

    # Two minutes before the end, the warning; "Stay signed in" counts as use and hides it.
    page.clock.run_for(timedelta(minutes=IDLE_MINUTES - 2, seconds=1).total_seconds() * 1000)
    warning.wait_for(state="visible")
    page.get_by_role("button", name="Stay signed in").click()
    warning.wait_for(state="hidden")
    assert page.url.endswith("/settings")

    # Away for the whole time: the page reloads and the server asks for a sign-in again.
    age_sign_ins(product["database_url"], practice.clinic_admin, timedelta(minutes=IDLE_MINUTES))
    page.clock.run_for(timedelta(minutes=IDLE_MINUTES, seconds=6).total_seconds() * 1000)
    page.get_by_text(f"You were signed out after {IDLE_MINUTES} minutes").wait_for()
    assert "/sign-in" in page.url
    assert page.get_by_label("Password").is_visible()
