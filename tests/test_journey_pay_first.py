"""Pay before the call, by clicking, on `make run`: a call started with a fee, a patient who
goes back from Checkout and then pays, and a second person the clinician lets in free.

The clinician starts a call with a fee of A$60.00; the patient joins with the guest link and
lands on the pay-first page; the clinician's screen shows "Fee due" without a reload. The
patient goes to Stripe's Checkout, comes back without paying (told nothing was charged), pays,
and lands on the call; the clinician sees "Fee paid" and the popup. A carer joins, waits on the
pay-first page, and moves on to the call by themselves when the clinician waives the fee.
axe-core finds no serious or critical violation on the pay-first pages and the call screen;
the pay-first page is the clinic's and fits a phone.
"""

import re

import pytest

from tests.journeys import (
    emails_to,
    link_stripe,
    new_practice,
    pay_on_checkout,
    save_screenshot,
    signed_in,
)
from tests.processes import wait_for
from tests.test_accessibility import violations
from tests.test_journey_phone_width import fits_each_width, headed_by_the_clinic

pytestmark = pytest.mark.browser


@pytest.fixture
def practice(journey_product):
    """A clinic of this journey's own with its gateway on, its Stripe account not linked."""
    return new_practice(journey_product, gateway_on=True)


def shot(product, page, name: str) -> None:
    save_screenshot(page, f"pay-first-{product['shape']}-{name}")


def join(chromium, guest_link: str, name: str):
    page = chromium.new_context().new_page()
    page.goto(guest_link)
    page.get_by_text("A$60.00 (Consultation fee) before the call").wait_for()  # told first
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Join the call").click()
    return page


def test_pay_before_the_call_go_back_pay_and_a_waiver(journey_product, practice, chromium):
    product = journey_product
    link_stripe(chromium, product, practice)

    clinician = signed_in(chromium, product, practice.clinician, "/calls/")
    clinician.on("dialog", lambda dialog: dialog.accept())  # "Waive the fee for …?"
    clinician.get_by_label("Patient or appointment (optional)").fill("Pat Citizen, pay first")
    clinician.get_by_label("Amount (A$)").fill("60")
    clinician.get_by_label("Description").fill("Consultation fee")
    shot(product, clinician, "1-start-with-a-fee")
    clinician.get_by_role("button", name=f"Start a call at {practice.clinic}").click()
    clinician.get_by_text("Each patient pays A$60.00 (Consultation fee)").wait_for()
    guest_link = clinician.get_by_label("Patient's link to this call").input_value()

    patient = join(chromium, guest_link, "Pat Citizen")
    patient.get_by_role("heading", name="Pay before your call").wait_for()
    assert "A$60.00" in patient.content() and "Consultation fee" in patient.content()
    clinician.get_by_text("Fee due").wait_for()  # live, no reload
    shot(product, patient, "2-pay-first-page")
    found = {"pay-first page": violations(patient), "call screen, fee due": violations(clinician)}

    # To Checkout, and back without paying.
    patient.get_by_role("button", name="Pay now").click()
    patient.wait_for_url(re.compile(re.escape(product["stripe_url"]) + ".*"))
    patient.get_by_role("link", name="Back").click()
    patient.get_by_text("You went back without paying. Nothing was charged.").wait_for()
    shot(product, patient, "3-went-back")
    found["pay-first page, went back"] = violations(patient)
    assert {page: lines for page, lines in found.items() if lines} == {}  # axe-core
    headed_by_the_clinic(patient, practice.clinic)  # the clinic's page; vcpay in the footer
    fits_each_width(patient, product, "pay-first")  # on a phone: the patient pays from here

    # Pay now again: the same Checkout, paid, and the call.
    patient.get_by_role("button", name="Pay now").click()
    patient.wait_for_url(re.compile(re.escape(product["stripe_url"]) + ".*"))
    pay_on_checkout(patient, "4242 4242 4242 4242", practice.patient)
    patient.get_by_text("You joined as Pat Citizen.").wait_for(timeout=30_000)
    shot(product, patient, "4-in-the-call")
    popup = clinician.get_by_role("dialog")
    popup.wait_for()
    assert "Pat Citizen paid A$60.00: Consultation fee" in popup.inner_text()
    popup.get_by_role("button", name="Dismiss").click()
    clinician.get_by_text("Fee paid").wait_for()
    [receipt] = wait_for(lambda: emails_to(product, practice.patient), 30, "the receipt")
    assert "A$60.00" in receipt["text"] and "Consultation fee" in receipt["text"]

    # A carer joins and waits; the clinician waives their fee; their page moves on by itself.
    carer = join(chromium, guest_link, "Sam Carer")
    carer.get_by_role("heading", name="Pay before your call").wait_for()
    clinician.get_by_role("button", name="Waive fee").wait_for()
    shot(product, clinician, "5-fee-paid-and-due")
    clinician.get_by_role("button", name="Waive fee").click()
    clinician.get_by_text("Fee waived").first.wait_for()
    carer.get_by_text("You joined as Sam Carer.").wait_for(timeout=30_000)
    shot(product, carer, "6-waived-carer-in-the-call")
    for page in (patient, carer):
        page.context.close()
