"""Every kind of page, checked by axe-core in Chromium on `make run`: no serious or critical
violation (missing labels, too little contrast, landmarks, ARIA that points nowhere).

axe-core comes with the ``axe-playwright-python`` test dependency (pyproject.toml), which
injects it into the page. One product (the embedded shape) serves the whole walk: the pages
are the same in both shapes. Stripe's stand-in Checkout page is not vcpay's and is left out.
"""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.journeys import (
    emails_to,
    link_stripe,
    new_practice,
    pay_on_checkout,
    request_payment,
    signed_in,
)
from tests.processes import wait_for

pytestmark = pytest.mark.browser

SERIOUS = ("serious", "critical")
AXE = Axe()
PATIENT = "Pat Citizen"


def violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as it is now, one line each."""
    page.wait_for_load_state()
    found = AXE.run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:5])
        for v in found
        if v["impact"] in SERIOUS
    ]


class Walk:
    """The pages checked so far and what axe found on each."""

    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}

    def check(self, page, name: str) -> None:
        self.found[name] = violations(page)

    def failures(self) -> dict[str, list[str]]:
        return {name: lines for name, lines in self.found.items() if lines}


@pytest.mark.parametrize("journey_product", ["embedded"], indirect=True)
def test_every_kind_of_page_has_no_serious_or_critical_violation(journey_product, chromium):
    product, walk = journey_product, Walk()
    visitor = chromium.new_context().new_page()
    visitor.goto(f"{product['url']}/sign-in")
    walk.check(visitor, "sign-in")
    visitor.get_by_role("button", name="Sign in").click()  # nothing filled in: refused
    walk.check(visitor, "sign-in, refused")
    visitor.goto(f"{product['url']}/no-such-page")
    walk.check(visitor, "error page")
    visitor.goto(f"{product['url']}/forgot-password")
    walk.check(visitor, "forgot password")
    visitor.get_by_label("Email").fill("nobody@example.org")
    visitor.get_by_role("button", name="Email me a link").click()
    visitor.get_by_text("belongs to an active vcpay account").wait_for()
    walk.check(visitor, "forgot password, asked")
    visitor.goto(f"{product['url']}/reset-password/not-a-link")
    walk.check(visitor, "reset link, dead")

    asking_practice(chromium, product, walk)
    paying_practice(chromium, product, walk)

    assert sorted(walk.found) == sorted(PAGES)
    assert walk.failures() == {}


PAGES = [
    "sign-in",
    "sign-in, refused",
    "error page",
    "forgot password",
    "forgot password, asked",
    "reset link, dead",
    "home",
    "client payments",
    "enablement form",
    "enablement form, refused",
    "enablement detail",
    "enablement list",
    "clinic",
    "call list",
    "call screen",
    "call screen, request refused",
    "guest join",
    "guest call",
    "guest call, asked to pay",
    "payment done",
    "call screen, payment popup",
    "payments",
    "payment detail",
    "refund form",
    "time zone",
    "payouts",
    "settings",
    "change password",
    "change password, refused",
    "sessions",
    "organisation team",
    "organisation team, refused",
    "clinic team",
    "invitation",
    "two-factor settings",
    "two-factor enrolment",
    "two-factor enrolment, refused",
]


def asking_practice(chromium, product, walk: Walk) -> None:
    """An organisation admin asks for the Payment Gateway."""
    practice = new_practice(product, gateway_on=False)
    admin = signed_in(chromium, product, practice.org_admin, "/")
    walk.check(admin, "home")
    admin.goto(f"{product['url']}/client-payments/")
    walk.check(admin, "client payments")
    admin.get_by_role("link", name="Request the Payment Gateway").first.click()
    walk.check(admin, "enablement form")
    admin.get_by_role("button", name="Send request").click()  # nothing chosen: refused
    admin.get_by_text("Some answers need your attention").wait_for()
    walk.check(admin, "enablement form, refused")
    admin.locator("#clinics-0-selected").check()
    admin.locator("#clinics-0-has_stripe_account").check()
    admin.locator("#clinics-0-stripe_account_hint").fill("accounts@harbourside.example")
    admin.get_by_label("I accept the Payment Gateway terms").check()
    admin.get_by_role("button", name="Send request").click()
    admin.get_by_text("Waiting for the telehealth manager").first.wait_for()
    walk.check(admin, "enablement detail")
    admin.get_by_role("link", name="Payment Gateway requests").first.click()
    walk.check(admin, "enablement list")
    building_the_team(chromium, product, practice, admin, walk)
    admin.context.close()


def building_the_team(chromium, product, practice, admin, walk: Walk) -> None:
    """The organisation admin invites a clinician; the invited person opens the emailed link."""
    admin.goto(f"{product['url']}/team")
    admin.get_by_role("link", name=f"Team of {practice.organisation}").click()
    walk.check(admin, "organisation team")
    admin.get_by_role("button", name="Send the invitation").click()  # nothing filled in
    admin.get_by_text("Enter the email address of the person to invite.").wait_for()
    walk.check(admin, "organisation team, refused")
    invited = f"invited-{practice.token}@journeys.example"
    admin.get_by_label("Email address").fill(invited)
    admin.get_by_label("Role", exact=True).select_option("clinician")
    admin.get_by_label("Clinic", exact=True).select_option(label=practice.clinic)
    admin.get_by_role("button", name="Send the invitation").click()
    admin.get_by_text(f"Invitation sent to {invited}.").wait_for()
    admin.get_by_role("link", name=practice.clinic).first.click()
    walk.check(admin, "clinic team")
    [email] = wait_for(lambda: emails_to(product, invited), 30, "the invitation")
    link = re.search(r"http://\S+/invitations/\S+", email["text"]).group(0)
    newcomer = chromium.new_context().new_page()
    newcomer.goto(link)
    walk.check(newcomer, "invitation")
    newcomer.context.close()


def paying_practice(chromium, product, walk: Walk) -> None:
    """A payment taken in a call, then the back office that follows it."""
    practice = new_practice(product, gateway_on=True)
    link_stripe(chromium, product, practice)
    admin = signed_in(chromium, product, practice.clinic_admin, "/client-payments/")
    admin.get_by_role("link", name=practice.clinic).first.click()
    walk.check(admin, "clinic")

    clinician = signed_in(chromium, product, practice.clinician, "/calls/")
    walk.check(clinician, "call list")
    clinician.get_by_label("Patient or appointment (optional)").fill(f"{PATIENT}, 10:30")
    clinician.get_by_role("button", name=f"Start a call at {practice.clinic}").click()
    clinician.get_by_role("heading", name=f"{PATIENT}, 10:30").wait_for()
    walk.check(clinician, "call screen")
    request_payment(clinician, "lots", "Consultation")
    clinician.get_by_text("as a number in dollars and cents").wait_for()
    walk.check(clinician, "call screen, request refused")

    guest_link = clinician.get_by_label("Patient's link to this call").input_value()
    patient_context = chromium.new_context()
    patient = patient_context.new_page()
    patient.goto(guest_link)
    walk.check(patient, "guest join")
    patient.get_by_label("Your name").fill(PATIENT)
    patient.get_by_role("button", name="Join the call").click()
    patient.get_by_text(f"You joined as {PATIENT}.").wait_for()
    walk.check(patient, "guest call")
    clinician.get_by_text(f"{PATIENT} (patient)").wait_for()
    request_payment(clinician, "85.00", "Consultation")
    patient.get_by_role("button", name="Pay now").wait_for()
    walk.check(patient, "guest call, asked to pay")
    with patient_context.expect_page() as opened:
        patient.get_by_role("button", name="Pay now").click()
    checkout = opened.value
    checkout.wait_for_load_state()
    pay_on_checkout(checkout, "4242 4242 4242 4242", practice.patient)
    checkout.get_by_role("heading", name="Payment received").wait_for()
    walk.check(checkout, "payment done")
    clinician.get_by_role("dialog").wait_for()
    walk.check(clinician, "call screen, payment popup")
    clinician.get_by_role("dialog").get_by_role("button", name="Dismiss").click()
    patient_context.close()

    admin.goto(f"{product['url']}/payments/")
    walk.check(admin, "payments")
    admin.locator("tbody tr", has_text="Consultation").get_by_role("link").first.click()
    admin.get_by_role("heading", name="A$85.00 · Consultation").wait_for()
    walk.check(admin, "payment detail")
    admin.get_by_role("link", name="Refund", exact=True).click()
    admin.get_by_label("Amount to refund (A$)").wait_for()
    walk.check(admin, "refund form")
    admin.goto(f"{product['url']}/client-payments/")
    admin.get_by_role("link", name=practice.clinic).first.click()
    clinic_id = re.search(r"/clinics/(\d+)", admin.url).group(1)
    admin.goto(f"{product['url']}/payments/clinics/{clinic_id}/time-zone")
    walk.check(admin, "time zone")
    admin.goto(f"{product['url']}/payouts/")
    walk.check(admin, "payouts")
    admin.goto(f"{product['url']}/settings")
    walk.check(admin, "settings")
    admin.get_by_role("link", name="Change your password").click()
    walk.check(admin, "change password")
    admin.get_by_role("button", name="Change my password").click()  # nothing filled in
    admin.get_by_text("Enter your current password.").wait_for()
    walk.check(admin, "change password, refused")
    admin.goto(f"{product['url']}/settings/sessions")
    walk.check(admin, "sessions")
    admin.goto(f"{product['url']}/settings/two-factor")
    walk.check(admin, "two-factor settings")
    admin.get_by_role("link", name="Turn on two-factor sign-in").click()
    walk.check(admin, "two-factor enrolment")
    admin.get_by_role("button", name="Turn on two-factor sign-in").click()  # no code
    admin.get_by_text("Enter the code from your app.").wait_for()
    walk.check(admin, "two-factor enrolment, refused")
