"""Payment notices: the clinic admins who opt in under Your settings are emailed once about a
payment that failed or a request that expired unpaid in a clinic they administer.

The real ``stripe`` library talks HTTP to the stand-in, whose webhooks reach vcpay over HTTP;
stored events are processed as a worker would. Emails are the outbox's rows, and one is
delivered over SMTP to the mail stand-in as a worker sends it.
"""

import re
from datetime import timedelta
from functools import partial
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from sandbox.mail import start_mail_catcher
from tests import factories
from tests.conftest import csrf_token, sign_in
from tests.payment_steps import (
    ask,
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    join,
    requests_made,
    start_call,
    the_request,
)
from tests.stripe_standin import link_clinic, process_received, received, wait_for_events
from tests.test_races import at_once
from vcpay.audit.models import AuditEntry
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.mail.models import OutboundEmail
from vcpay.mail.tasks import send_email
from vcpay.notices.services import Notice, notify_clinic_admins
from vcpay.payments import reconciler, transitions
from vcpay.payments.models import PaymentRequest, PaymentState
from vcpay.payments.tasks import reconcile_thresholds
from vcpay.people.models import ClinicRole, User
from vcpay.people.services import find_user_by_email
from vcpay.webhooks.models import EventState, StripeEvent
from vcpay.webhooks.services import process

SYDNEY = ZoneInfo("Australia/Sydney")
CLINIC_ADMIN = "clinicadmin@harbourside.example"
ORG_ADMIN = "orgadmin@harbourside.example"
CLINICIAN = "clinician@harbourside.example"


def opted_in(*emails: str, locale: str | None = None) -> None:
    for email in emails:
        user = find_user_by_email(email)
        user.payment_notices = True
        user.locale = locale or user.locale
    db.session.commit()


def notices(kind: Notice | None = None) -> list[OutboundEmail]:
    db.session.rollback()
    prefix = f"notice:{kind.value}:" if kind else "notice:"
    query = select(OutboundEmail).where(OutboundEmail.dedupe_key.startswith(prefix))
    return list(db.session.scalars(query.order_by(OutboundEmail.recipient)))


def recipients(kind: Notice | None = None) -> list[str]:
    return [email.recipient for email in notices(kind)]


@pytest.fixture
def other_clinic_admin(app, gp, stripe_control):
    """An opted-in admin of another organisation's clinic, linked too: never told of the GP's."""
    organisation = factories.organisation("Riverside Care", "Riverside GP Clinic")
    admin = factories.clinic_person(
        "clinicadmin@riverside.example", organisation.clinics[0], ClinicRole.CLINIC_ADMIN
    )
    admin.payment_notices = True
    link_clinic(stripe_control, organisation.clinics[0])
    db.session.commit()
    return admin


def asked_in_a_call(app, clinician, gp) -> PaymentRequest:
    call = start_call(clinician, gp)
    join(app, call)
    assert ask(clinician, call).status_code == 303
    return the_request()


def failed_delayed_payment(webhooks, request: PaymentRequest) -> None:
    webhooks.pay(request.checkout_session_id, delayed=True)
    webhooks.settle(request.checkout_session_id, "failed")
    webhooks.wait_for_webhooks()
    process_received()


def ran_out_of_time(webhooks, request: PaymentRequest) -> None:
    """The request's time is up (as though half an hour had passed) and Stripe's clock
    closes its Checkout page."""
    db.session.execute(
        update(PaymentRequest)
        .where(PaymentRequest.id == request.id)
        .values(expires_at=utcnow() - timedelta(seconds=5))
    )
    db.session.commit()
    webhooks.expire_now(request.checkout_session_id)
    wait_for_events("checkout.session.expired")
    process_received()


# -- Your settings: opting in and out ---------------------------------------------------------


def notices_box(page: str) -> str:
    return re.search(r'<input[^>]*name="payment_notices"[^>]*>', page)[0]


def settings_form(browser) -> tuple[str, str]:
    page = browser.get("/settings").get_data(as_text=True)
    return page, csrf_token(browser, "/settings")


def test_a_clinic_admin_opts_in_and_out_and_each_change_is_audited(app, gp):
    admin = app.test_client()
    sign_in(admin, CLINIC_ADMIN)
    home = admin.get("/").get_data(as_text=True)
    assert re.search(r'<a class="settings-link" href="/settings"[^>]*>Your settings</a>', home)
    page, token = settings_form(admin)
    assert "Email me about payment problems in the clinics I administer" in page
    assert "Harbourside GP Clinic" in page
    assert "checked" not in notices_box(page)

    saved = admin.post("/settings", data={"csrf_token": token, "payment_notices": "y"})
    assert saved.status_code == 303
    assert find_user_by_email(CLINIC_ADMIN).payment_notices is True
    page = admin.get(saved.location).get_data(as_text=True)
    assert "you will get an email about each payment problem" in page
    assert "checked" in notices_box(page)

    admin.post("/settings", data={"csrf_token": token})  # the box unticked
    db.session.rollback()
    assert find_user_by_email(CLINIC_ADMIN).payment_notices is False
    changes = db.session.scalars(
        select(AuditEntry).filter_by(action="user.payment_notices").order_by(AuditEntry.id)
    ).all()
    assert [entry.details for entry in changes] == [{"on": True}, {"on": False}]
    assert {entry.actor.email for entry in changes} == {CLINIC_ADMIN}


def test_saving_without_the_forms_token_changes_nothing(app, gp):
    admin = app.test_client()
    sign_in(admin, CLINIC_ADMIN)
    refused = admin.post("/settings", data={"payment_notices": "y"})
    assert refused.status_code == 400
    db.session.rollback()
    assert find_user_by_email(CLINIC_ADMIN).payment_notices is False
    assert (
        db.session.scalars(select(AuditEntry).filter_by(action="user.payment_notices")).all() == []
    )


def test_an_organisation_admin_is_offered_the_notices_of_every_clinic_of_the_organisation(app, gp):
    org_admin = app.test_client()
    sign_in(org_admin, ORG_ADMIN)
    page, _token = settings_form(org_admin)
    assert "Harbourside GP Clinic" in page and "Harbourside Physiotherapy" in page
    assert 'name="payment_notices"' in page


def test_a_clinician_who_administers_no_clinic_is_told_why_and_cannot_opt_in(app, clinician):
    page, token = settings_form(clinician)
    assert "You do not administer a clinic, so there is nothing to choose here." in page
    assert 'name="payment_notices"' not in page
    refused = clinician.post("/settings", data={"csrf_token": token, "payment_notices": "y"})
    assert refused.status_code == 403
    db.session.rollback()
    assert find_user_by_email(CLINICIAN).payment_notices is False


# -- The notices -----------------------------------------------------------------------------


def test_a_failed_payment_is_emailed_once_to_the_admins_who_opted_in(
    app, clinician, gp, webhooks, other_clinic_admin
):
    opted_in(CLINIC_ADMIN)  # the organisation admin did not
    request = asked_in_a_call(app, clinician, gp)
    failed_delayed_payment(webhooks, request)
    assert the_request().state == PaymentState.FAILED
    [email] = notices(Notice.PAYMENT_FAILED)
    assert email.recipient == CLINIC_ADMIN
    assert email.subject == "Payment failed: A$85.00 for Consultation, Harbourside GP Clinic"
    body = email.body_text
    assert body.startswith("Hello,\n\nA payment in Harbourside GP Clinic failed")
    for fact in (
        "Amount: A$85.00",
        "For: Consultation",
        "Patient: Pat Citizen",
        "Requested by: ",
        "Call: Pat Citizen, 10:30",
        " AEDT\n" if the_request().created_at.astimezone(SYDNEY).dst() else " AEST\n",
        f"http://127.0.0.1:5000/payments/{request.id}\n",  # the payment's page
        "http://127.0.0.1:5000/settings",
    ):
        assert fact in body, fact
    assert "{{" not in body and "\n\n\n" not in body


def test_replays_and_second_looks_send_no_second_notice(app, clinician, gp, webhooks):
    opted_in(CLINIC_ADMIN, ORG_ADMIN)
    request = asked_in_a_call(app, clinician, gp)
    failed_delayed_payment(webhooks, request)
    assert recipients(Notice.PAYMENT_FAILED) == [CLINIC_ADMIN, ORG_ADMIN]
    stripe_api = StripeApi.for_app()
    # Stripe's event again, as though its first processing had been lost.
    for stored in received():
        stored.state = EventState.RECEIVED.value
    db.session.commit()
    process_received()
    # The patient's page and the reconciler asking Stripe.
    transitions.sync_with_stripe(the_request(), stripe_api)
    db.session.commit()
    db.session.execute(update(PaymentRequest).values(created_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    reconciler.reconcile(stripe_api, **reconcile_thresholds(app.config))
    # Even a request moved twice (it cannot be) is told of once: the email's key is the request's.
    db.session.execute(update(PaymentRequest).values(state=PaymentState.PROCESSING.value))
    db.session.commit()
    assert transitions.sync_with_stripe(the_request(), stripe_api) is True
    db.session.commit()
    assert recipients(Notice.PAYMENT_FAILED) == [CLINIC_ADMIN, ORG_ADMIN]


def test_two_workers_applying_the_failure_at_once_send_one_notice_each(
    app, clinician, gp, webhooks
):
    opted_in(CLINIC_ADMIN)
    call = start_call(clinician, gp)
    join(app, call)
    for round_number in range(4):
        ask(clinician, call, amount=f"{85 + round_number}.00")
        request = requests_made()[-1]
        webhooks.pay(request.checkout_session_id, delayed=True)
        webhooks.wait_for_webhooks()
        process_received()
        webhooks.settle(request.checkout_session_id, "failed")
        webhooks.wait_for_webhooks()
        waiting = select(StripeEvent).filter_by(state=EventState.RECEIVED.value)
        [stored] = db.session.scalars(
            waiting.filter_by(type="checkout.session.async_payment_failed")
        ).all()

        def reconciling(request_id=request.id):
            transitions.sync_with_stripe(
                db.session.get(PaymentRequest, request_id), StripeApi.for_app()
            )
            db.session.commit()

        at_once(app, partial(process, stored.id), reconciling)
        process_received()  # the other events of the failure
        assert db.session.get(PaymentRequest, request.id).state == PaymentState.FAILED
    assert len(notices(Notice.PAYMENT_FAILED)) == 4


def test_a_request_that_expired_unpaid_is_emailed_in_each_admins_language(
    app, clinician, gp, webhooks
):
    opted_in(CLINIC_ADMIN)
    opted_in(ORG_ADMIN, locale="sr_Cyrl")
    gp.time_zone = "Australia/Perth"
    db.session.commit()
    request = asked_in_a_call(app, clinician, gp)
    ran_out_of_time(webhooks, request)
    assert the_request().state == PaymentState.EXPIRED
    english, serbian = notices(Notice.PAYMENT_EXPIRED)
    assert english.recipient == CLINIC_ADMIN
    assert english.subject == (
        "Payment request expired unpaid: A$85.00 for Consultation, Harbourside GP Clinic"
    )
    assert "expired before the patient paid it. Nothing was taken." in english.body_text
    assert " AWST\n" in english.body_text and "Australia/Perth" not in english.body_text
    assert serbian.recipient == ORG_ADMIN
    assert serbian.body_text.startswith("Поштовани,")
    assert "За: Consultation" in serbian.body_text  # noqa: RUF001
    # The same expiry learnt again changes nothing.
    webhooks.redeliver(webhooks.events(type="checkout.session.expired")[0]["id"])
    webhooks.wait_for_webhooks()
    process_received()
    transitions.sync_with_stripe(the_request(), StripeApi.for_app())
    db.session.commit()
    assert len(notices(Notice.PAYMENT_EXPIRED)) == 2


def test_a_cancelled_request_sends_no_notice(app, clinician, gp, webhooks):
    opted_in(CLINIC_ADMIN, ORG_ADMIN)
    request = asked_in_a_call(app, clinician, gp)
    token = csrf_token(clinician, f"/calls/{request.call_id}")
    clinician.post(
        f"/calls/{request.call_id}/payment-requests/{request.request_key}/cancel",
        data={"csrf_token": token},
    )
    wait_for_events("checkout.session.expired")
    process_received()
    assert the_request().state == PaymentState.CANCELLED
    assert notices() == []


def test_a_checkout_page_closed_before_its_time_is_no_expiry_to_tell(app, clinician, gp, webhooks):
    """Word of a cancel's closing the page can reach a worker before the cancel is recorded;
    the request then reads as expired for a moment, but it did not run out of time."""
    opted_in(CLINIC_ADMIN)
    request = asked_in_a_call(app, clinician, gp)
    webhooks.expire_now(request.checkout_session_id)  # half an hour early
    wait_for_events("checkout.session.expired")
    process_received()
    assert the_request().state == PaymentState.EXPIRED
    assert notices() == []


def test_nobody_opted_in_means_no_email(app, clinician, gp, webhooks):
    request = asked_in_a_call(app, clinician, gp)
    failed_delayed_payment(webhooks, request)
    assert the_request().state == PaymentState.FAILED
    assert notices() == []


def test_a_disabled_admin_gets_no_notice(app, clinician, gp, webhooks):
    opted_in(CLINIC_ADMIN)
    db.session.execute(update(User).filter_by(email=CLINIC_ADMIN).values(is_disabled=True))
    db.session.commit()
    request = asked_in_a_call(app, clinician, gp)
    failed_delayed_payment(webhooks, request)
    assert notices() == []


def test_a_notice_is_delivered_over_smtp(app, clinician, gp, webhooks):
    opted_in(CLINIC_ADMIN)
    request = asked_in_a_call(app, clinician, gp)
    failed_delayed_payment(webhooks, request)
    [email] = notices()
    with start_mail_catcher() as catcher:
        app.config.update(SMTP_HOST=catcher.host, SMTP_PORT=catcher.smtp_port)
        send_email(email.id)
        [message] = catcher.store.messages()
    assert list(message.envelope_recipients) == [CLINIC_ADMIN]
    assert message.subject == email.subject
    assert "Amount: A$85.00" in message.text


# -- The refund and payout notices' templates, for their features to send --------------------


def test_the_refund_and_payout_notices_read_like_the_payment_ones(app, clinician, gp):
    opted_in(CLINIC_ADMIN)
    request = asked_in_a_call(app, clinician, gp)
    request.paid_at = utcnow()
    admin = find_user_by_email(CLINIC_ADMIN)
    refund = SimpleNamespace(
        amount=2500, reason="Double booked", shown_reason="Double booked",
        failure_reason="expired_or_canceled_card", requested_by=admin,
    )  # fmt: skip
    notify_clinic_admins(
        gp, Notice.REFUND_FAILED, "re_1", "Refund failed", "refund_failed",
        request=request, refund=refund, link="http://127.0.0.1:5000/payments/1",
    )  # fmt: skip
    payout = SimpleNamespace(
        amount=123456, currency="aud", payout_id="po_1", arrival_date=utcnow(),
        failure_message="The bank account has been closed.",
    )  # fmt: skip
    notify_clinic_admins(
        gp, Notice.PAYOUT_FAILED, "po_1", "Payout failed", "payout_failed",
        payout=payout, page="http://127.0.0.1:5000/payouts/po_1",  # as payouts names it
    )  # fmt: skip
    db.session.commit()
    payout_email, refund_email = sorted(notices(), key=lambda e: e.dedupe_key)
    assert "Refund: A$25.00" in refund_email.body_text
    assert "Reason for the refund: Double booked" in refund_email.body_text
    assert "as Stripe says: expired or canceled card" in refund_email.body_text
    assert "Amount: A$85.00" in refund_email.body_text
    assert "Payout: A$1,234.56 (po_1)" in payout_email.body_text
    assert "The bank account has been closed." in payout_email.body_text
    assert "The payout: http://127.0.0.1:5000/payouts/po_1" in payout_email.body_text
    for body in (refund_email.body_text, payout_email.body_text):
        assert body.startswith("Hello,\n\n")
        assert body.endswith("http://127.0.0.1:5000/settings\n\nvcpay")
        assert "\n\n\n" not in body
