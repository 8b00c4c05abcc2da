"""The clinic's money by clicking, on `make run`: pay in a call, then the back office.

A patient pays A$85.00 in a call. The clinic admin asks for payment notices on Your
settings, opens Payments from the navigation, filters by the patient's name and a status,
reads the totals and the daily takings chart, and opens the payment: its timeline tells who
asked for it, the card that paid and the receipt emailed. The admin refunds A$20.00 of it
with a reason; once the worker has processed Stripe's events the payment, the call screen
and the patient's refund email all say so. Stripe pays the balance out (the stand-in's test
controls stand for its schedule); the payment's page links to the payout, which holds the
payment and adds up. Last, Export CSV downloads the filtered payments, read back with
Python's csv module.
"""

import csv
import io
import re

import pytest

from sandbox.common.control import ControlRefused
from sandbox.stripe.control_client import StripeControl
from tests.journeys import (
    emails_to,
    link_stripe,
    new_practice,
    pay_on_checkout,
    reload_until,
    request_payment,
    save_screenshot,
    signed_in,
)
from tests.processes import wait_for

pytestmark = pytest.mark.browser

PATIENT = "Pat Citizen"
# What the worker does after a click (webhooks, emails) may take a while on a loaded machine.
WORKER_MS = 60_000
WORKER_SECONDS = 60


def shot(product, page, name: str) -> None:
    save_screenshot(page, f"back-office-{product['shape']}-{name}")


def paid_in_a_call(browser, product, practice):
    """The clinician asks for A$85.00 in a call and the patient pays it with a Visa card: the
    clinician's call screen (still open) and the receipt number the patient was shown."""
    clinician = signed_in(browser, product, practice.clinician, "/calls/")
    clinician.get_by_label("Patient or appointment (optional)").fill(f"{PATIENT}, review")
    clinician.get_by_role("button", name=f"Start a call at {practice.clinic}").click()
    guest_link = clinician.get_by_label("Patient's link to this call").input_value()

    patient_context = browser.new_context()
    patient = patient_context.new_page()
    patient.goto(guest_link)
    patient.get_by_label("Your name").fill(PATIENT)
    patient.get_by_role("button", name="Join the call").click()
    patient.get_by_text(f"You joined as {PATIENT}.").wait_for()
    clinician.get_by_text(f"{PATIENT} (patient)").wait_for()

    request_payment(clinician, "85.00", "Consultation")
    patient.get_by_text("A$85.00").wait_for()
    with patient_context.expect_page() as opened:
        patient.get_by_role("button", name="Pay now").click()
    checkout = opened.value
    checkout.wait_for_load_state()
    pay_on_checkout(checkout, "4242 4242 4242 4242", practice.patient)
    checkout.get_by_role("heading", name="Payment received").wait_for()
    [receipt_number] = re.findall(r"Receipt number</dt><dd>([\w-]+)", checkout.content())
    shot(product, checkout, "1-patient-paid")
    clinician.get_by_role("dialog").wait_for()  # the payment popup
    clinician.get_by_role("dialog").get_by_role("button", name="Dismiss").click()
    patient_context.close()
    return clinician, receipt_number


def ask_for_payment_notices(admin, product) -> None:
    admin.get_by_role("link", name="Your settings").click()
    admin.get_by_label("Email me about payment problems in the clinics I administer").check()
    admin.get_by_role("button", name="Save settings").click()
    admin.get_by_text("Saved: you will get an email about each payment problem").wait_for()
    assert admin.get_by_label("Email me about payment problems").is_checked()
    shot(product, admin, "2-settings")


def find_the_payment(admin, product, step: str) -> None:
    """Payments from the navigation, filtered to the patient's paid payments."""
    admin.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Payments", exact=True
    ).click()
    admin.get_by_role("heading", name="Payments", exact=True).wait_for()
    admin.get_by_label("Search").fill(PATIENT)
    admin.get_by_label("Status").select_option(label="Paid (including refunded)")
    admin.get_by_role("button", name="Show").click()
    admin.wait_for_url(re.compile(r".*/payments/\?.*q=Pat"))
    totals = admin.get_by_role("region", name="Totals for this selection").inner_text()
    for shown in ("A$85.00", "1 paid of 1"):
        assert shown in totals, shown
    chart = admin.get_by_role("region", name="Daily takings").locator("svg")
    assert chart.locator("rect.bar").count() >= 1  # today's bar
    assert "A$85.00" in chart.inner_html()  # the bar's own title: its day and amount
    shot(product, admin, step)


def the_timeline(admin) -> str:
    return admin.get_by_role("region", name="Timeline").inner_text()


def test_pay_find_refund_part_see_the_payout_and_export_by_clicking(journey_product, chromium):
    product = journey_product
    practice = new_practice(product, gateway_on=True)
    link_stripe(chromium, product, practice)
    clinician, receipt_number = paid_in_a_call(chromium, product, practice)

    admin = signed_in(chromium, product, practice.clinic_admin, "/")
    ask_for_payment_notices(admin, product)
    find_the_payment(admin, product, "3-payments-filtered")

    admin.locator("tbody tr", has_text="Consultation").get_by_role("link").click()
    admin.get_by_role("heading", name="A$85.00 · Consultation").wait_for()
    reload_until(admin, f"Receipt emailed to {practice.patient}", WORKER_SECONDS)
    timeline = the_timeline(admin)
    for told in (
        "Requested by Dr Jordan Rivers in the call",
        f"Paid A$85.00, Visa card ending 4242, receipt {receipt_number}",
        f"Receipt emailed to {practice.patient}",
    ):
        assert told in timeline, told
    shot(product, admin, "4-payment")

    # Refund part of it, with a reason.
    admin.get_by_role("link", name="Refund", exact=True).click()
    admin.get_by_label("Part of it").check()
    admin.get_by_label("Amount to refund (A$)").fill("20.00")
    admin.get_by_label("Reason").fill("Shorter consultation than booked")
    shot(product, admin, "5-refund-form")
    admin.get_by_role("button", name="Refund", exact=True).click()
    admin.get_by_role("heading", name="A$85.00 · Consultation").wait_for()
    reload_until(admin, "Refunded A$20.00 of A$85.00", WORKER_SECONDS)
    assert "A$65.00 remains" in admin.content()
    reload_until(admin, "(succeeded) · Reason: Shorter consultation than booked", WORKER_SECONDS)
    assert "Refund of A$20.00 by Sam Patel" in the_timeline(admin)
    shot(product, admin, "6-refunded-part")

    def refund_notice():
        return [e for e in emails_to(product, practice.patient) if "has refunded" in e["text"]]

    [notice] = wait_for(refund_notice, WORKER_SECONDS, "the patient's refund email")
    for told in (
        f"{practice.clinic} has refunded A$20.00 to you.",
        "Refunded so far: A$20.00 of the A$85.00 you paid",
        f"Receipt {receipt_number}",
    ):
        assert told in notice["text"], told
    # The clinician's call screen, still open, shows the refunded amount without a reload.
    clinician.get_by_text("Refunded A$20.00 of A$85.00").wait_for(timeout=WORKER_MS)
    shot(product, clinician, "7-call-screen-refunded")

    # Stripe pays the clinic's balance into its bank: the stand-in's schedule, made to happen
    # now. Its own five-minute schedule may have carried the payment already; either will do.
    stripe = StripeControl(product["stripe_url"])
    stripe.settle_balance(practice.account_id)
    try:
        stripe.pay_out(practice.account_id)
    except ControlRefused:
        assert stripe.payouts(account=practice.account_id), "nothing was paid out"
    reload_until(admin, "In payout po_", WORKER_SECONDS)
    shot(product, admin, "8-payment-in-a-payout")
    admin.get_by_role("link", name=re.compile(r"^In payout po_")).first.click()
    admin.get_by_role("heading", name=re.compile(r"^Payout of A\$")).wait_for()
    held = admin.get_by_role("region", name="What it holds")
    held.get_by_text("Adds up").wait_for()
    payment_line = held.locator("tbody tr", has_text=receipt_number).filter(has_text="Payment")
    for shown in (PATIENT, "Consultation", "A$85.00", "A$1.75", "A$83.25"):
        assert shown in payment_line.inner_text(), shown
    shot(product, admin, "9-payout")
    payment_line.get_by_role("link", name=receipt_number).click()  # back to the payment
    admin.get_by_role("heading", name="A$85.00 · Consultation").wait_for()

    # Export what the Payments filter selects.
    find_the_payment(admin, product, "10-payments-refunded-and-paid-out")
    with admin.expect_download() as downloading:
        admin.get_by_role("link", name="Export CSV").click()
    download = downloading.value
    assert re.fullmatch(r"payments-.*\.csv", download.suggested_filename)
    raw = download.path().read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM spreadsheet programs look for
    [row] = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    expected = {
        "Clinic": practice.clinic,
        "Amount": "85.00",
        "Currency": "AUD",
        "Receipt number": receipt_number,
        "Patient": PATIENT,
        "Patient email": practice.patient,
        "Clinician": "Dr Jordan Rivers",
        "Description": "Consultation",
        "Refunded": "20.00",
        "Fee": "1.75",
        "Net": "63.25",
    }
    assert {column: row[column] for column in expected} == expected
    assert row["Payout"].startswith("po_")
    admin.context.close()
    clinician.context.close()
