"""Save a card for after the call, by clicking, on `make run`: the clinic admin turns it on,
the patient saves a card with their consent when joining, the call ends, and the clinician
charges the card from the ended call's page; the patient gets the receipt, and the back office
marks the payment off-session. axe-core finds no serious or critical violation on the page
that offers to save a card, the clinic admin's Saved cards page and the ended call's screen.
"""

import re

import pytest

from tests.journeys import emails_to, link_stripe, new_practice, save_screenshot, signed_in
from tests.processes import wait_for
from tests.test_accessibility import violations

pytestmark = pytest.mark.browser


@pytest.fixture
def practice(journey_product):
    return new_practice(journey_product, gateway_on=True)


def shot(product, page, name: str) -> None:
    save_screenshot(page, f"saved-cards-{product['shape']}-{name}")


def test_save_a_card_then_charge_it_after_the_call(journey_product, practice, chromium):
    product = journey_product
    link_stripe(chromium, product, practice)
    admin = signed_in(chromium, product, practice.clinic_admin, "/client-payments/")
    admin.get_by_role("link", name=practice.clinic).first.click()
    admin.get_by_role("link", name="Saved cards").click()
    admin.get_by_role("button", name="Turn on").click()
    admin.get_by_text("may save a card").first.wait_for()
    found = {"saved cards, none": violations(admin)}

    clinician = signed_in(chromium, product, practice.clinician, "/calls/")
    clinician.on("dialog", lambda dialog: dialog.accept())  # "End the call for everyone?"
    clinician.get_by_label("Patient or appointment (optional)").fill("Pat Citizen, later")
    clinician.get_by_role("button", name=f"Start a call at {practice.clinic}").click()
    guest_link = clinician.get_by_label("Patient's link to this call").input_value()

    patient = chromium.new_context().new_page()
    patient.goto(guest_link)
    patient.get_by_text("offers to keep a card for charges after the call").wait_for()
    patient.get_by_label("Your name").fill("Pat Citizen")
    patient.get_by_role("button", name="Join the call").click()
    patient.get_by_role("heading", name="Save a card for after the call").wait_for()
    patient.get_by_label("Email for receipts (optional)").fill(practice.patient)
    patient.get_by_role("checkbox").check()
    shot(product, patient, "1-consent")
    found["save a card"] = violations(patient)
    patient.get_by_role("button", name="Save a card").click()
    patient.wait_for_url(re.compile(re.escape(product["stripe_url"]) + ".*"))
    patient.get_by_label("Email").fill(practice.patient)
    patient.get_by_label("Card number").fill("4242 4242 4242 4242")
    patient.get_by_label("Expiry").fill("12 / 34")
    patient.get_by_label("CVC").fill("123")
    patient.get_by_label("Name on card").fill("Pat Citizen")
    patient.get_by_role("button", name="Save card").click()
    patient.get_by_text("is saved. Nothing was charged.").wait_for(timeout=30_000)
    shot(product, patient, "2-saved")

    # The call ends; the clinician charges the card from the ended call's page.
    call_screen = clinician.url.split("#")[0]
    clinician.get_by_role("button", name="End call").click()
    clinician.get_by_text("The call has ended.").first.wait_for()
    clinician.goto(call_screen)  # the ended call's page, from the list of calls
    if (
        clinician.get_by_role("button", name="Apps & Tools").get_attribute("aria-expanded")
        != "true"
    ):
        clinician.get_by_role("button", name="Apps & Tools").click()
    tool = clinician.locator("#saved-cards")
    assert "Pat Citizen · Visa •••• 4242" in tool.inner_text()
    tool.get_by_label("Amount (A$)").fill("45")
    tool.get_by_label("Description").fill("Consultation, after the call")
    shot(product, clinician, "3-charge")
    tool.get_by_role("button", name="Charge saved card").click()
    clinician.get_by_text("Paid: A$45.00 charged to the saved card.").wait_for()
    clinician.get_by_text("off-session").first.wait_for()
    shot(product, clinician, "4-paid")
    found["ended call, paid off-session"] = violations(clinician)
    receipts = wait_for(
        lambda: [m for m in emails_to(product, practice.patient) if "A$45.00" in m["text"]],
        30,
        "the receipt",
    )
    assert "Consultation, after the call" in receipts[0]["text"]

    admin.goto(f"{product['url']}/payments/?from=&to=")
    admin.get_by_text("Consultation, after the call").wait_for()
    assert "off-session" in admin.content()
    admin.goto(admin.url.split("/payments")[0] + "/client-payments/")
    admin.get_by_role("link", name=practice.clinic).first.click()
    admin.get_by_role("link", name="Saved cards").click()
    admin.get_by_text("•••• 4242").wait_for()
    found["saved cards, one"] = violations(admin)
    assert {page: lines for page, lines in found.items() if lines} == {}  # axe-core
    for page in (patient, clinician, admin):
        page.context.close()
