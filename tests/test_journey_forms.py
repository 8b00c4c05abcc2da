"""The call screen's forms as people expect them, by clicking, on `make run`.

A clinician opens a call before the clinic has linked Stripe: Request Payment says why it
cannot be used. The clinic admin links Stripe, and the open screen offers the form without a
reload. A refused request leaves the address on the call screen: a reload sends nothing
again and shows the screen, not "not available here". Cancel request and End call ask
first; answering no changes nothing.
"""

import re

import pytest

from tests.journeys import link_stripe, new_practice, request_payment, signed_in

pytestmark = pytest.mark.browser

PATIENT = "Pat Citizen"


def answer_next_dialog(page, accept: bool) -> list[str]:
    """Answer the page's next confirm(); returns the list its message is added to."""
    asked: list[str] = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", answer)
    return asked


def test_relinking_refusals_and_confirmations_on_the_call_screen(journey_product, chromium):
    product = journey_product
    practice = new_practice(product, gateway_on=True)  # Stripe not linked yet
    clinician = signed_in(chromium, product, practice.clinician, "/calls/")
    clinician.get_by_label("Patient or appointment (optional)").fill(f"{PATIENT}, 9:00")
    clinician.get_by_role("button", name=f"Start a call at {practice.clinic}").click()
    clinician.get_by_role("heading", name=f"{PATIENT}, 9:00").wait_for()
    call_url = clinician.url
    clinician.get_by_role("button", name="Apps & Tools").click()
    clinician.get_by_text("has no Stripe account linked yet").wait_for()
    clinician.evaluate("window.sameScreen = true")

    # The clinic admin links Stripe; the open screen offers Request Payment, not reloaded.
    link_stripe(chromium, product, practice)
    clinician.get_by_label("Amount (A$)").wait_for(timeout=30_000)
    assert clinician.evaluate("window.sameScreen") is True
    assert clinician.get_by_text("has no Stripe account linked yet").count() == 0

    # Refused: the address is the call screen's; a reload posts nothing and shows the screen.
    request_payment(clinician, "lots", "Consultation")
    clinician.get_by_text("as a number in dollars and cents").wait_for()
    assert re.fullmatch(re.escape(call_url) + r"(#request-payment)?", clinician.url)
    assert clinician.get_by_label("Amount (A$)").input_value() == "lots"  # as sent
    posted = []
    clinician.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    clinician.reload()
    clinician.get_by_role("heading", name=f"{PATIENT}, 9:00").wait_for()
    assert posted == []
    assert clinician.get_by_text("as a number in dollars and cents").count() == 0
    assert "not available here" not in clinician.content()

    patient_context = chromium.new_context()
    patient = patient_context.new_page()
    patient.goto(clinician.get_by_label("Patient's link to this call").input_value())
    patient.get_by_label("Your name").fill(PATIENT)
    patient.get_by_role("button", name="Join the call").click()
    clinician.get_by_text(f"{PATIENT} (patient)").wait_for()
    request_payment(clinician, "85.00", "Consultation")
    clinician.get_by_text("Waiting for the patient").wait_for()

    # Cancel request asks first: no keeps it open, yes cancels it.
    asked = answer_next_dialog(clinician, accept=False)
    clinician.get_by_role("button", name="Cancel request").click()
    assert asked == ["Cancel the request for A$85.00? The patient can no longer pay it."]
    clinician.wait_for_timeout(500)
    assert not [url for url in posted if url.endswith("/cancel")]
    answer_next_dialog(clinician, accept=True)
    clinician.get_by_role("button", name="Cancel request").click()
    clinician.get_by_text("Payment request cancelled.").wait_for()

    # End call asks first too.
    asked = answer_next_dialog(clinician, accept=False)
    clinician.get_by_role("button", name="End call").click()
    assert asked == ["End the call for everyone? The patient's link stops working shortly."]
    clinician.wait_for_timeout(500)
    assert not [url for url in posted if url.endswith("/end")]
    answer_next_dialog(clinician, accept=True)
    clinician.get_by_role("button", name="End call").click()
    clinician.get_by_text("The call has ended.").wait_for()
    patient_context.close()
