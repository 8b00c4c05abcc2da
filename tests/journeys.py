"""Shared steps of the browser journeys through `make run`."""

import time
from pathlib import Path

import pytest

from tests.processes import running_product
from vcpay.people.demo import DEMO_PASSWORD

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Short intervals so workers act within seconds of what the journey does.
JOURNEY_SETTINGS = {"VCPAY_JIRA_POLL_SECONDS": "2", "VCPAY_HEARTBEAT_SECONDS": "5"}


@pytest.fixture(scope="session")
def demo_product(tmp_path_factory):
    """One `make run` for every journey: each works on its own clinic of the demo."""
    with running_product(tmp_path_factory.mktemp("instance"), **JOURNEY_SETTINGS) as started:
        yield started


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


def reload_until(page, text: str, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while text not in page.content():
        assert time.monotonic() < deadline, f"'{text}' did not appear on {page.url}"
        time.sleep(0.5)
        page.reload()
