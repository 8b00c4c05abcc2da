"""The heart of the product by clicking, on `make run`: a call, a payment, a popup, a receipt.

The clinician starts a call; the patient joins with the guest link in another browser;
the clinician requests A$85.00; the patient's screen shows it without a reload; the patient
pays on the Stripe stand-in's Checkout page in a new tab and sees the confirmation; the
clinician gets the popup; the receipt arrives in the mail catcher, with its own link to the
receipt. Then a declined card, seen on both sides, and a retry that pays.
"""

import re

import pytest

from tests.journeys import (
    emails_to,
    link_stripe,
    new_practice,
    pay_on_checkout,
    request_payment,
    save_screenshot,
    signed_in,
)
from tests.processes import wait_for

pytestmark = pytest.mark.browser


@pytest.fixture
def practice(journey_product):
    """A clinic of this journey's own with its gateway on, its Stripe account not linked."""
    return new_practice(journey_product, gateway_on=True)


def shot(product, page, name: str) -> None:
    save_screenshot(page, f"payment-{product['shape']}-{name}")


def acknowledgement(response) -> bool:
    """The server's answer to the popup's Dismiss: only then is the dismissal stored."""
    return response.request.method == "POST" and response.url.endswith("/acknowledge")


def test_request_pay_popup_and_receipt_then_a_declined_card(journey_product, practice, chromium):
    product = journey_product
    link_stripe(chromium, product, practice)

    clinician = signed_in(chromium, product, practice.clinician, "/calls/")
    clinician.get_by_label("Patient or appointment (optional)").fill("Pat Citizen, follow-up")
    clinician.get_by_role("button", name=f"Start a call at {practice.clinic}").click()
    guest_link = clinician.get_by_label("Patient's link to this call").input_value()
    shot(product, clinician, "1-call-started")

    patient_context = chromium.new_context()
    patient = patient_context.new_page()
    patient.goto(guest_link)
    patient.get_by_label("Your name").fill("Pat Citizen")
    patient.get_by_role("button", name="Join the call").click()
    patient.get_by_text("You joined as Pat Citizen.").wait_for()
    clinician.get_by_text("Pat Citizen (patient)").wait_for()  # live, no reload

    request_payment(clinician, "85.00", "Consultation")
    clinician.get_by_text("Waiting for the patient").wait_for()
    shot(product, clinician, "2-requested")
    patient.get_by_text("A$85.00").wait_for()  # the patient's screen, without a reload
    shot(product, patient, "3-patient-sees-request")

    with patient_context.expect_page() as opened:
        patient.get_by_role("button", name="Pay now").click()
    checkout = opened.value
    checkout.wait_for_load_state()
    assert checkout.url.startswith(product["stripe_url"])
    shot(product, checkout, "4-checkout")
    pay_on_checkout(checkout, "4242 4242 4242 4242", practice.patient)
    checkout.get_by_role("heading", name="Payment received").wait_for()
    confirmation = checkout.content()
    for shown in (
        practice.clinic,
        "Consultation",
        "A$85.00",
        "Visa",
        "4242",
        practice.patient,
    ):
        assert shown in confirmation, shown
    assert re.search(r"Receipt number</dt><dd>[\w-]+", confirmation)
    shot(product, checkout, "5-confirmation")
    patient.get_by_text("Paid").first.wait_for()
    shot(product, patient, "6-patient-paid")

    popup = clinician.get_by_role("dialog")
    popup.wait_for()
    assert "Pat Citizen paid A$85.00: Consultation" in popup.inner_text()
    shot(product, clinician, "7-popup")
    with clinician.expect_response(acknowledgement):
        popup.get_by_role("button", name="Dismiss").click()
    clinician.reload()
    assert not clinician.get_by_role("dialog").is_visible()  # dismissed stays dismissed

    [receipt] = wait_for(lambda: emails_to(product, practice.patient), 30, "the receipt")
    for shown in (practice.clinic, "A$85.00", "Consultation", "ending in 4242"):
        assert shown in receipt["text"], shown
    # The email's own link shows the receipt in any browser; the call's link does not.
    [receipt_link] = re.findall(r"https?://\S+/join/receipts/\S+", receipt["text"])
    stranger = chromium.new_context().new_page()
    stranger.goto(receipt_link)
    stranger.get_by_text(practice.patient).wait_for()
    stranger.goto(checkout.url)
    assert practice.patient not in stranger.content()
    stranger.context.close()

    # A declined card: both sides see it, and the patient pays with another card.
    request_payment(clinician, "40", "Pathology report")
    patient.get_by_text("A$40.00").wait_for()
    with patient_context.expect_page() as opened:
        patient.get_by_role("button", name="Pay now").click()
    checkout = opened.value
    checkout.wait_for_load_state()
    pay_on_checkout(checkout, "4000 0000 0000 0002", practice.patient)
    checkout.get_by_text("Your card was declined.").wait_for()
    shot(product, checkout, "8-declined")
    clinician.get_by_text("Card declined, patient can retry").wait_for()
    patient.get_by_text("Your card was not accepted").wait_for()
    shot(product, clinician, "9-clinician-sees-decline")
    pay_on_checkout(checkout, "4242 4242 4242 4242", practice.patient)
    checkout.get_by_role("heading", name="Payment received").wait_for()
    popup = clinician.get_by_role("dialog")
    popup.wait_for()
    assert "Pat Citizen paid A$40.00: Pathology report" in popup.inner_text()
    shot(product, clinician, "10-second-popup")
    patient_context.close()


def test_with_an_interpreter_in_the_call_the_clinician_chooses_who_pays(
    journey_product, practice, chromium
):
    product = journey_product
    link_stripe(chromium, product, practice)
    clinician = signed_in(chromium, product, practice.clinician, "/calls/")
    clinician.get_by_label("Patient or appointment (optional)").fill("Two people")
    clinician.get_by_role("button", name=f"Start a call at {practice.clinic}").click()
    guest_link = clinician.get_by_label("Patient's link to this call").input_value()
    clinician.get_by_role("button", name="Apps & Tools").click()
    who_pays = clinician.get_by_label("Who pays")
    assert who_pays.input_value() == "anyone"  # nobody has joined yet

    contexts, screens = [], {}
    for name in ("Pat Citizen", "Ana (interpreter)"):
        contexts.append(chromium.new_context())
        screens[name] = contexts[-1].new_page()
        screens[name].goto(guest_link)
        screens[name].get_by_label("Your name").fill(name)
        screens[name].get_by_role("button", name="Join the call").click()
        screens[name].get_by_text(f"You joined as {name}.").wait_for()
    # The choices follow who joined, without a reload; with two people nobody is assumed.
    clinician.get_by_role("option", name="Ana (interpreter)").wait_for(state="attached")
    assert who_pays.input_value() == ""

    clinician.get_by_label("Amount (A$)").fill("60")
    clinician.get_by_label("Description").fill("Follow-up")
    who_pays.select_option(label="Pat Citizen")
    clinician.get_by_role("button", name="Request Payment").click()
    clinician.get_by_text("from Pat Citizen").wait_for()
    screens["Pat Citizen"].get_by_role("button", name="Pay now").wait_for()
    screens["Ana (interpreter)"].get_by_text("Requested from Pat Citizen.").wait_for()
    assert screens["Ana (interpreter)"].get_by_role("button", name="Pay now").count() == 0
    shot(product, screens["Ana (interpreter)"], "11-interpreter-sees-who-pays")

    # Pat rejoins from a phone: typing the name gives nothing; the clinician says who it is.
    contexts.append(chromium.new_context())
    phone = contexts[-1].new_page()
    phone.goto(guest_link)
    phone.get_by_label("Your name").fill("Pat Citizen")
    phone.get_by_role("button", name="Join the call").click()
    phone.get_by_text("Requested from Pat Citizen.").wait_for()
    assert phone.get_by_role("button", name="Pay now").count() == 0
    clinician.get_by_role("button", name="This is Pat Citizen").wait_for()
    shot(product, clinician, "12-clinician-sees-this-is-pat")
    clinician.get_by_role("button", name="This is Pat Citizen").click()
    clinician.get_by_text("recognised as Pat Citizen").first.wait_for()
    phone.get_by_role("button", name="Pay now").wait_for()  # without a reload
    shot(product, phone, "13-rejoined-patient-recognised")
    assert screens["Ana (interpreter)"].get_by_role("button", name="Pay now").count() == 0
    for context in contexts:
        context.close()
