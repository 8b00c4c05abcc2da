"""A payment's page: its timeline from what vcpay recorded, the Stripe dashboard link, the
Refund button once refunds exist, the receipt sent again (once per form, audited), and a
clinic's time zone; one story end to end through a real paid request."""

import csv
import io
import re
from datetime import timedelta

import pytest
from flask import url_for
from sqlalchemy import select

from tests.conftest import csrf_token, sign_in
from tests.ledger_rows import call_in, payment, sydney
from tests.payment_steps import (
    ask,
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    paid_in_a_new_call,
    pay_and_process,
    start_call,
    the_request,
)
from tests.stripe_standin import process_received, wait_for_events
from vcpay.audit.models import AuditEntry
from vcpay.calls.events import CallEventKind
from vcpay.calls.models import CallEvent
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail
from vcpay.payments.models import PaymentRefund, PaymentState
from vcpay.people.demo import seed_demo
from vcpay.people.models import Clinic
from vcpay.people.services import find_user_by_email

CLINIC_ADMIN = "clinicadmin@harbourside.example"
CLINICIAN = "clinician@harbourside.example"


def decline(call, at, request_key, message) -> None:
    """A declined attempt as vcpay.payments.transitions records it: a call event."""
    data = {"request": request_key, "message": message}
    kind = CallEventKind.PAYMENT_DECLINED.value
    db.session.add(CallEvent(call=call, kind=kind, created_at=at, data=data))


@pytest.fixture
def paid(app):
    organisation = seed_demo(enable_gateway=True)
    gp = next(c for c in organisation.clinics if c.name == "Harbourside GP Clinic")
    call = call_in(gp, find_user_by_email(CLINICIAN), title="Pat Citizen, 10:30")
    at = sydney(2026, 3, 1, 10, 30)
    row = payment(
        call, at, amount=150_00, state=PaymentState.PARTIALLY_REFUNDED, amount_refunded=50_00,
        card_brand="visa", card_last4="4242", receipt_number="1234-5678",
        payment_intent_id="pi_123",
    )  # fmt: skip
    declined = at + timedelta(minutes=1)
    decline(call, declined, row.request_key, "Your card was declined.")
    decline(call, declined, "another-request", "Not this request's")
    refunded = at + timedelta(days=1)
    db.session.add(
        PaymentRefund(
            payment_request=row, amount=50_00, reason="Follow-up not needed", state="succeeded",
            refund_key="k" * 20, requested_by=find_user_by_email(CLINIC_ADMIN),
            created_at=refunded, updated_at=refunded,
        )
    )  # fmt: skip
    receipt_at = at + timedelta(minutes=3)
    receipt = OutboundEmail(
        dedupe_key=f"receipt:{row.id}", recipient="pat@example.org", subject="x", body_text="x",
        created_at=receipt_at,
    )  # fmt: skip
    db.session.add(receipt)
    db.session.commit()
    return row


def browser_of(app, email):
    browser = app.test_client()
    sign_in(browser, email)
    return browser


def test_the_timeline_tells_the_whole_story_in_the_clinics_time(app, paid):
    page = browser_of(app, CLINIC_ADMIN).get(f"/payments/{paid.id}").get_data(as_text=True)
    timeline = page.split('id="timeline-heading"')[1].split("</ol>")[0]

    told = [re.sub(r"<[^>]+>", " ", "<li" + item).strip() for item in timeline.split("<li")[1:]]
    assert "Requested by Dr Jordan Rivers in the call “Pat Citizen, 10:30”" in told[0]
    assert told[0].startswith("1 Mar 2026, 10:30\u202fam AEDT")  # Sydney's clock, not UTC's
    assert "A card was declined: Your card was declined." in told[1]
    assert "Paid A$150.00, Visa card ending 4242, receipt 1234-5678" in told[2]
    assert "Receipt to pat@example.org waiting to be sent" in told[3]
    assert "Refund of A$50.00 by Sam Patel (succeeded) · Reason: Follow-up not needed" in told[4]
    assert len(told) == 5  # the other request's decline is not this one's
    assert "A$100.00 remains" in page


def test_the_stripe_dashboard_link_names_the_account_and_the_payment(app, paid):
    page = browser_of(app, CLINIC_ADMIN).get(f"/payments/{paid.id}").get_data(as_text=True)
    assert "/acct_ledger/payments/pi_123" in page
    clinician_page = browser_of(app, CLINICIAN).get(f"/payments/{paid.id}").get_data(as_text=True)
    assert "/payments/pi_123" not in clinician_page and "Send the receipt again" not in (
        clinician_page
    )


def test_the_refund_button_is_for_those_who_may_refund_what_remains(app, paid):
    if "refunds.new" not in app.view_functions:  # refunds' own form, or a stand-in for it
        app.add_url_rule("/x/<int:payment_id>/refund", "refunds.new", lambda payment_id: "")
    with app.test_request_context():
        target = url_for("refunds.new", payment_id=paid.id)

    admin_page = browser_of(app, CLINIC_ADMIN).get(f"/payments/{paid.id}").get_data(as_text=True)
    clinician_page = browser_of(app, CLINICIAN).get(f"/payments/{paid.id}").get_data(as_text=True)
    paid.amount_refunded, paid.state = paid.amount, PaymentState.REFUNDED.value
    db.session.commit()
    all_refunded = browser_of(app, CLINIC_ADMIN).get(f"/payments/{paid.id}").get_data(as_text=True)

    assert f'href="{target}"' in admin_page
    assert target not in clinician_page and target not in all_refunded


def resend_form(browser, paid) -> dict:
    page = browser.get(f"/payments/{paid.id}").get_data(as_text=True)
    key = re.search(r'name="resend_key" type="hidden" value="([^"]+)"', page).group(1)
    return {"csrf_token": csrf_token(browser, f"/payments/{paid.id}"), "resend_key": key}


def resent() -> list[OutboundEmail]:
    db.session.rollback()
    query = select(OutboundEmail).where(OutboundEmail.dedupe_key.like("%:resend:%"))
    return list(db.session.scalars(query))


def test_resending_the_receipt_twice_from_one_form_sends_one_email(app, paid):
    admin = browser_of(app, CLINIC_ADMIN)
    form = {**resend_form(admin, paid), "email": "pat.corrected@example.org"}

    first = admin.post(f"/payments/{paid.id}/receipt", data=form)
    second = admin.post(f"/payments/{paid.id}/receipt", data=form)

    assert first.status_code == second.status_code == 303
    [email] = resent()
    assert email.recipient == "pat.corrected@example.org"
    assert "1234-5678" in email.body_text
    [entry] = db.session.scalars(select(AuditEntry).filter_by(action="payment.receipt_resent"))
    assert entry.details == {"recipient": "pat.corrected@example.org", "corrected": True}
    again = {**resend_form(admin, paid), "email": "pat@example.org"}
    assert admin.post(f"/payments/{paid.id}/receipt", data=again).status_code == 303
    assert len(resent()) == 2
    page = admin.get(f"/payments/{paid.id}").get_data(as_text=True)
    assert "Receipt to pat.corrected@example.org waiting to be sent" in page


@pytest.mark.parametrize(
    "email", ["", "not an address", "pat@", "a\tb@example.org", "x" * 250 + "@example.org"]
)
def test_a_bad_address_is_explained_and_nothing_is_sent(app, paid, email):
    admin = browser_of(app, CLINIC_ADMIN)
    refused = admin.post(f"/payments/{paid.id}/receipt", data={**resend_form(admin, paid),
                                                                "email": email})  # fmt: skip
    assert refused.status_code == 400
    assert 'class="field-error"' in refused.get_data(as_text=True)
    assert resent() == []


def test_a_clinician_cannot_resend_and_a_tampered_key_is_refused(app, paid):
    clinician = browser_of(app, CLINICIAN)
    token = csrf_token(clinician, f"/payments/{paid.id}")
    form = {"csrf_token": token, "resend_key": "a" * 24, "email": "pat@example.org"}
    assert clinician.post(f"/payments/{paid.id}/receipt", data=form).status_code == 403
    admin = browser_of(app, CLINIC_ADMIN)
    bad_key = {**resend_form(admin, paid), "resend_key": "short", "email": "pat@example.org"}
    assert admin.post(f"/payments/{paid.id}/receipt", data=bad_key).status_code == 400
    assert resent() == []


def test_a_clinic_admin_sets_the_time_zone_from_a_list_and_it_is_audited(app, paid):
    admin = browser_of(app, CLINIC_ADMIN)
    path = f"/payments/clinics/{paid.clinic_id}/time-zone"
    token = csrf_token(admin, path)

    refused = admin.post(path, data={"csrf_token": token, "time_zone": "Mars/Olympus_Mons"})
    saved = admin.post(path, data={"csrf_token": token, "time_zone": "Australia/Perth"})

    assert refused.status_code == 400 and saved.status_code == 303
    db.session.rollback()
    assert db.session.get(Clinic, paid.clinic_id).time_zone == "Australia/Perth"
    [entry] = db.session.scalars(select(AuditEntry).filter_by(action="clinic.time_zone_changed"))
    assert entry.details == {"before": "Australia/Sydney", "after": "Australia/Perth"}
    page = admin.get(f"/payments/{paid.id}").get_data(as_text=True)
    assert "1 Mar 2026, 7:30\u202fam AWST" in page  # 10:30 in Sydney is 7:30 in Perth
    clinician = browser_of(app, CLINICIAN)
    assert clinician.get(path).status_code == 403


def test_a_paid_request_end_to_end_shows_up_with_its_card_receipt_and_decline(
    app, clinician, gp, webhooks
):
    call = start_call(clinician, gp)
    ask(clinician, call, "42.50", "Telehealth consult")
    request = the_request()
    pay_and_process(webhooks, request, "4000000000000002")
    wait_for_events("payment_intent.payment_failed")
    process_received()
    pay_and_process(webhooks, request)
    wait_for_events("checkout.session.completed")
    process_received()
    admin = browser_of(app, CLINIC_ADMIN)

    listing = admin.get("/payments/?q=telehealth").get_data(as_text=True)
    detail = admin.get(f"/payments/{request.id}").get_data(as_text=True)
    export = admin.get("/payments/export.csv?status=settled").get_data(as_text=True)

    assert f'href="/payments/{request.id}"' in listing and "A$42.50" in listing
    assert "A card was declined" in detail and "card ending 4242" in detail
    assert "Receipt" in detail and "pat@example.org" in detail
    [row] = list(csv.DictReader(io.StringIO(export.lstrip("\ufeff"))))
    assert (row["Amount"], row["Status"], row["Patient email"]) == (
        "42.50",
        "Paid",
        "pat@example.org",
    )


def test_another_paid_request_through_the_pages(app, clinician, gp, webhooks):
    request = paid_in_a_new_call(clinician, gp, webhooks, amount="19.95")
    page = browser_of(app, CLINICIAN).get("/payments/").get_data(as_text=True)
    assert f'href="/payments/{request.id}"' in page and "A$19.95" in page
