"""The patient sees the clinic, not the software: the clinic's name heads and titles each of
the patient's pages and the receipt email; vcpay is named only in their footers."""

import re

import pytest
from sqlalchemy import select

from tests.conftest import csrf_token
from tests.payment_steps import (
    ask,
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    join,
    paid_with_the_page_asking_stripe,
    pay_link,
    receipt_path,
    start_call,
    the_request,
)
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail

# What these tests check happens before or beside any query: SQLite alone runs them.
pytestmark = pytest.mark.any_database

CLINIC = "Harbourside GP Clinic"


def parts(html: str) -> dict[str, str]:
    """The page's title, header, main content and footer, as text."""
    found = {}
    for part in ("title", "header", "main", "footer"):
        match = re.search(rf"<{part}\b[^>]*>(.*?)</{part}>", html, re.S)
        assert match, f"no <{part}>"
        found[part] = re.sub(r"<[^>]+>", " ", match.group(1))
    return found


def headed_by(response, clinic: str | None) -> None:
    assert response.status_code in (200, 404), response.status_code
    page = parts(response.get_data(as_text=True))
    if clinic is not None:
        assert clinic in page["header"], page["header"]
        assert clinic in page["title"], page["title"]
    for part in ("title", "header", "main"):
        assert "vcpay" not in page[part].lower(), (part, page[part])
    assert "vcpay" in page["footer"]


@pytest.mark.parametrize("language", ["en", "sr", "sr-Latn"])
def test_each_patient_page_is_headed_by_the_clinic(app, clinician, gp, stripe_control, language):
    heard = {"Accept-Language": language}
    call = start_call(clinician, gp)
    headed_by(app.test_client().get(f"/join/{call.guest_token}", headers=heard), CLINIC)
    patient = join(app, call, "Pat Citizen")
    ask(clinician, call, "85.00", "Consultation")
    request = the_request()
    headed_by(patient.get(f"/join/{call.guest_token}", headers=heard), CLINIC)
    headed_by(patient.get(pay_link(call, request), headers=heard), CLINIC)

    done, _ = paid_with_the_page_asking_stripe(patient, call, request, stripe_control)
    headed_by(patient.get(done, headers=heard), CLINIC)
    [email] = db.session.scalars(select(OutboundEmail)).all()
    headed_by(app.test_client().get(receipt_path(email), headers=heard), CLINIC)

    token = csrf_token(clinician, f"/calls/{call.id}")
    clinician.post(f"/calls/{call.id}/end", data={"csrf_token": token})
    stranger = app.test_client()
    headed_by(stranger.get(f"/join/{call.guest_token}", headers=heard), CLINIC)
    # A link that names no clinic names no software either, above the footer.
    headed_by(stranger.get("/join/not-a-call-link", headers=heard), None)
    headed_by(stranger.get("/join/receipts/not-a-receipt", headers=heard), None)


def test_the_receipt_email_opens_with_the_clinic_and_names_vcpay_last(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    patient = join(app, call, "Pat Citizen")
    ask(clinician, call, "85.00", "Consultation")
    paid_with_the_page_asking_stripe(patient, call, the_request(), stripe_control)
    [email] = db.session.scalars(select(OutboundEmail)).all()
    assert email.subject == f"Your receipt from {CLINIC}"
    heading, *body, footer = re.split(r"\n\s*\n", email.body_text.strip())
    assert heading == CLINIC
    assert "vcpay" not in "\n".join(body).lower()
    assert footer == f"Sent by vcpay for {CLINIC}."
