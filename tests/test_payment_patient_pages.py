"""Request Payment paid on the Stripe stand-in's Checkout: the patient's pages, the receipt and
who sees it, the confirmation page asking Stripe.

The real ``stripe`` library talks HTTP to the stand-in, whose webhooks reach vcpay over HTTP;
stored events are processed as a worker would.
"""

import time
from datetime import timedelta

from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select, update

from tests.conftest import csrf_token
from tests.payment_steps import (
    RECEIPT_DETAILS,
    ask,
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    join,
    kinds,
    paid_with_the_page_asking_stripe,
    pay_and_process,
    pay_link,
    pay_now,
    receipt_path,
    request_form,
    start_call,
    the_request,
)
from tests.stripe_standin import process_received, wait_for_events
from vcpay.calls.models import Call
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail
from vcpay.payments import receipts
from vcpay.payments.models import PaymentState


def test_paid_with_a_good_card_shows_paid_emails_one_receipt_and_pops_up(
    app, clinician, gp, webhooks
):
    call = start_call(clinician, gp)
    patient = join(app, call, "Pat Citizen")
    ask(clinician, call, "85.00", "Consultation")
    request = the_request()
    webhooks.webhook_fault("duplicate")  # and Stripe delivers the completion twice
    pay_and_process(webhooks, request)
    wait_for_events("checkout.session.completed")
    process_received()
    request = the_request()
    assert request.state == PaymentState.PAID
    assert (request.card_brand, request.card_last4, request.patient_email) == (
        "visa",
        "4242",
        "pat@example.org",
    )
    assert request.receipt_number
    # The patient's confirmation page applies nothing more.
    done = patient.get(
        f"/join/{call.guest_token}/payments/{request.request_key}/done?session_id={request.checkout_session_id}"
    )
    page = done.get_data(as_text=True)
    for shown in (
        "Payment received",
        "Harbourside GP Clinic",
        "Consultation",
        "A$85.00",
        request.receipt_number,
        "Visa",
        "4242",
        "pat@example.org",
    ):
        assert shown in page, shown
    [receipt] = db.session.scalars(select(OutboundEmail)).all()
    assert receipt.recipient == "pat@example.org"
    for shown in (
        "A$85.00",
        "Consultation",
        request.receipt_number,
        "ending in 4242",
        "Harbourside GP Clinic",
    ):
        assert shown in receipt.body_text, shown
    assert kinds(call).count("payment_paid") == 1
    panel = clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)
    assert "Pat Citizen paid A$85.00: Consultation" in panel  # the amount once, not the title
    assert panel.count("A$85.00") == 2  # in the payment table and the popup
    # Dismissed, it is not shown again; until then every reload shows it.
    token = csrf_token(clinician, f"/calls/{call.id}")
    acknowledged = clinician.post(
        f"/calls/{call.id}/payment-requests/{request.request_key}/acknowledge",
        headers={"X-CSRFToken": token},
    )
    assert acknowledged.status_code == 200
    assert "Pat Citizen paid" not in clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)
    assert "Paid" in patient.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)


def test_showing_the_payment_writes_nothing(app, clinician, gp, stripe_control):
    call = start_call(clinician, gp)
    patient = join(app, call, "Pat Citizen")
    ask(clinician, call, "85.00", "Consultation")
    before = the_request()
    shown = patient.get(pay_link(call, before), headers={"Accept-Language": "sr"})
    assert shown.status_code == 200
    assert 'class="pay-now"' in shown.get_data(as_text=True)  # with the Pay now form
    after = the_request()
    assert (after.patient_locale, after.updated_at) == ("", before.updated_at)
    refused = patient.post(pay_link(call, before), headers={"Accept-Language": "sr"})
    assert refused.status_code == 400  # no CSRF token: not a press of Pay now
    assert the_request().patient_locale == ""


def test_the_receipt_is_written_in_the_language_the_patient_paid_in(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    patient = join(app, call, "Pat Citizen")
    ask(clinician, call, "85.00", "Consultation")
    request = the_request()
    assert pay_now(patient, call, request, **{"Accept-Language": "sr"}).status_code == 303
    assert the_request().patient_locale == "sr_Cyrl"
    pay_and_process(webhooks, request)
    wait_for_events("checkout.session.completed")
    process_received()
    [receipt] = db.session.scalars(select(OutboundEmail)).all()
    assert receipt.subject == "Ваш рачун од клинике Harbourside GP Clinic"
    assert "Хвала вам на уплати клиници Harbourside GP Clinic." in receipt.body_text
    assert "Плаћени износ: A$85.00" in receipt.body_text


def test_only_the_payer_in_the_browser_they_joined_with_sees_the_receipt(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    patient = join(app, call, "Pat Citizen")
    ask(clinician, call)
    request = the_request()
    done, mine = paid_with_the_page_asking_stripe(patient, call, request, stripe_control)
    assert mine.status_code == 200
    assert all(shown in mine.get_data(as_text=True) for shown in RECEIPT_DETAILS)
    assert the_request().receipt_number in mine.get_data(as_text=True)

    someone_with_the_link = app.test_client()
    same_name = join(app, call, "Pat Citizen")
    for browser in (someone_with_the_link, same_name):
        for path in (done, pay_link(call, request), done.replace("/done", "/left")):
            page = browser.get(path)
            assert page.status_code == 403, path
            text = page.get_data(as_text=True)
            assert "open the link in the receipt email" in text
            for private in (*RECEIPT_DETAILS, the_request().receipt_number):
                assert private not in text, (path, private)
    panel = same_name.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    assert "Paid" in panel and "/done" not in panel
    assert "See the receipt" in patient.get(f"/join/{call.guest_token}/panel").get_data(
        as_text=True
    )


def receipt_withheld(browser, call, request, done: str) -> None:
    """Someone in the call who did not pay: told it is paid, shown nothing of the receipt."""
    for path in (done, pay_link(call, request)):
        page = browser.get(path)
        assert page.status_code == 403, path
        text = page.get_data(as_text=True)
        assert "This payment has been made." in text
        for private in (*RECEIPT_DETAILS, the_request().receipt_number):
            assert private not in text, (path, private)
    panel = browser.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    assert "Paid" in panel and "See the receipt" not in panel


def test_a_request_made_before_anyone_joined_is_the_payers_and_so_is_its_receipt(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    ask(clinician, call)  # nobody has joined: whoever joins with the link may pay
    request = the_request()
    assert request.payer is None
    pat = join(app, call, "Pat Citizen")
    assert pay_now(pat, call, request).location == request.checkout_url
    assert (the_request().payer.display_name, the_request().patient_name) == ("Pat Citizen",) * 2
    done, mine = paid_with_the_page_asking_stripe(pat, call, request, stripe_control)
    assert mine.status_code == 200
    assert all(shown in mine.get_data(as_text=True) for shown in RECEIPT_DETAILS)

    mallory = join(app, call, "Mallory")  # later, with the same link
    receipt_withheld(mallory, call, request, done)


def test_asked_of_anyone_the_first_to_press_pay_now_pays_and_sees_the_receipt_alone(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    pat = join(app, call, "Pat Citizen")
    carer = join(app, call, "Sam Citizen")
    ask(clinician, call, form={**request_form(clinician, call), "payer": "anyone"})
    request = the_request()
    assert pay_now(pat, call, request).status_code == 303
    taken = pay_now(carer, call, request)  # Pat pressed first: Pat pays
    assert taken.status_code == 403
    assert "Only they can pay it" in taken.get_data(as_text=True)
    done, mine = paid_with_the_page_asking_stripe(pat, call, request, stripe_control)
    assert mine.status_code == 200
    assert all(shown in mine.get_data(as_text=True) for shown in RECEIPT_DETAILS)
    receipt_withheld(carer, call, request, done)


def test_the_receipt_emails_own_link_shows_it_long_after_the_call(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    patient = join(app, call, "Pat Citizen")
    ask(clinician, call)
    request = the_request()
    paid_with_the_page_asking_stripe(patient, call, request, stripe_control)
    [email] = db.session.scalars(select(OutboundEmail)).all()
    path = receipt_path(email)
    assert call.guest_token not in path

    token = csrf_token(clinician, f"/calls/{call.id}")
    clinician.post(f"/calls/{call.id}/end", data={"csrf_token": token})
    db.session.execute(
        update(Call).filter_by(id=call.id).values(ended_at=utcnow() - timedelta(minutes=16))
    )
    db.session.commit()
    assert patient.get(f"/join/{call.guest_token}").status_code == 404  # the call's link is gone
    shown = app.test_client().get(path)  # any browser: the email is the key
    assert shown.status_code == 200
    text = shown.get_data(as_text=True)
    for detail in (*RECEIPT_DETAILS, the_request().receipt_number, "A$85.00", "Consultation"):
        assert detail in text, detail

    signed = path.rsplit("/", 1)[1]
    tampered = path[: -len(signed)] + signed[:-2] + ("AA" if signed[-2:] != "AA" else "BB")
    for bad in (tampered, path.replace(signed, "x" + signed[1:])):
        refused = app.test_client().get(bad)
        assert refused.status_code == 404
        assert "This receipt link is not valid" in refused.get_data(as_text=True)
        assert "pat@example.org" not in refused.get_data(as_text=True)

    class YearOld(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 367 * 24 * 3600

    old = URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=receipts.SALT, signer=YearOld)
    expired = app.test_client().get(path.replace(signed, old.dumps(request.request_key)))
    assert expired.status_code == 404
    assert "This receipt link has expired" in expired.get_data(as_text=True)


def test_a_patient_back_from_checkout_without_paying_is_told_nothing_was_charged(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    patient = join(app, call)
    ask(clinician, call)
    request = the_request()
    to_checkout = pay_now(patient, call, request)
    assert (to_checkout.status_code, to_checkout.location) == (303, request.checkout_url)
    [session] = stripe_control.sessions()
    left = f"/join/{call.guest_token}/payments/{request.request_key}/left"
    assert session["cancel_url"] == f"http://127.0.0.1:5000{left}"  # Stripe's back link
    page = patient.get(left)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "You went back without paying. Nothing was charged." in text
    assert 'class="pay-now"' in text  # they may still pay
    assert the_request().state == PaymentState.REQUESTED
    assert stripe_control.sessions()[0]["status"] == "open"
    missing = patient.get(f"/join/{call.guest_token}/payments/{'x' * 24}/left")
    assert missing.status_code == 404


def test_the_confirmation_page_asks_stripe_when_the_webhook_is_late(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    patient = join(app, call)
    ask(clinician, call)
    request = the_request()
    pay_and_process(stripe_control, request)  # no webhook endpoint: nothing arrives
    done = patient.get(
        f"/join/{call.guest_token}/payments/{request.request_key}/done?session_id={request.checkout_session_id}"
    )
    assert "Payment received" in done.get_data(as_text=True)
    assert the_request().state == PaymentState.PAID
    assert len(db.session.scalars(select(OutboundEmail)).all()) == 1
