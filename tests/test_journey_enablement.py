"""The enablement story by clicking, on `make run`: ask, endorse, approve in Jira, enabled.

An organisation admin asks for the gateway for the journey's own clinic (its gateway off);
the organisation's telehealth manager, emailed a link, endorses it; a worker raises it in the
Jira stand-in; an agent approves it on the stand-in's page; a worker enables the clinic (told
early by the stand-in's signed webhook, or at the next poll), comments on the Jira request
and emails everyone.
"""

import re

import pytest

from sandbox.jira.control_client import JiraControl
from tests.journeys import emails_to, new_practice, reload_until, save_screenshot, signed_in
from tests.processes import wait_for

pytestmark = pytest.mark.browser


def shot(product, page, name: str) -> None:
    save_screenshot(page, f"enablement-{product['shape']}-{name}")


def test_ask_endorse_approve_in_jira_and_the_clinic_is_enabled(journey_product, chromium):
    product = journey_product
    practice = new_practice(product, gateway_on=False)
    admin = signed_in(chromium, product, practice.org_admin, "/client-payments/")
    admin.get_by_role("link", name="Request the Payment Gateway").first.click()
    admin.locator("#clinics-0-selected").check()
    admin.locator("#clinics-0-has_stripe_account").check()
    admin.locator("#clinics-0-stripe_account_hint").fill("accounts@harbourside.example")
    admin.get_by_label("I accept the Payment Gateway terms").check()
    shot(product, admin, "1-form")
    admin.get_by_role("button", name="Send request").click()
    admin.get_by_text("Waiting for the telehealth manager").first.wait_for()
    shot(product, admin, "2-waiting-for-manager")

    [invitation] = wait_for(lambda: emails_to(product, practice.manager), 30, "the manager's email")
    link = re.search(r"http://\S+/enablement/requests/\d+", invitation["text"]).group(0)
    manager = signed_in(chromium, product, practice.manager, link.split(product["url"])[1])
    assert manager.url == link
    manager.get_by_role("button", name="Endorse and send to the service desk").click()
    reload_until(manager, "With the service desk")
    key = re.search(r"PAY-\d+", manager.content()).group(0)
    shot(product, manager, "3-raised")

    agent = chromium.new_page()
    agent.goto(f"{product['jira_url']}/")
    agent.get_by_role("button", name=f"Approve {key}").click()
    shot(product, agent, "4-approved-in-jira")

    reload_until(manager, "Approved: the Payment Gateway is on")
    shot(product, manager, "5-approved")
    manager.goto(f"{product['url']}/client-payments/")
    clinic_row = manager.get_by_role("row", name=re.compile(practice.clinic))
    assert "On" in clinic_row.inner_text()

    approved = wait_for(
        lambda: [m for m in emails_to(product, practice.org_admin) if "approved" in m["subject"]],
        30,
        "the requester's email",
    )
    assert practice.clinic in approved[0]["text"]
    comments = wait_for(
        lambda: [
            c
            for c in JiraControl(product["jira_url"]).request(key)["comments"]
            if "vcpay has enabled the Payment Gateway" in c["body"]
        ],
        30,
        "vcpay's comment on the Jira request",
    )
    assert len(comments) == 1
    assert practice.clinic in comments[0]["body"]

    # The stand-in told vcpay of the approval through its signed webhook, and vcpay took it
    # (202 queued a look; 200 if a poll had already applied the approval).
    webhooks = JiraControl(product["jira_url"]).webhooks()
    assert webhooks["signed"]
    answers = [
        a["status_code"]
        for a in webhooks["attempts"]
        if a["key"] == key and a["event"] == "jira:issue_updated"
    ]
    assert answers and set(answers) <= {200, 202}, answers
