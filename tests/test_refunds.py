"""Refunds: asked for on the refund page, made once at Stripe, followed to the state Stripe
gives them (in any order, however often its events come), and shown where people look.

The real ``stripe`` library talks HTTP to the stand-in, whose webhooks reach vcpay over HTTP;
stored events are processed as a worker would.
"""

import re

import pytest
from sqlalchemy import select, update

from tests import factories
from tests.conftest import CSRF_FIELD, sign_in
from tests.payment_steps import (  # noqa: F401 - the fixtures
    ask,
    clinician_fixture,
    gp_fixture,
    join,
    paid_in_a_new_call,
    pay_and_process,
    pay_now,
    start_call,
    stripe_platform,
    the_request,
)
from tests.stripe_standin import process_received, received
from vcpay.audit.models import AuditEntry
from vcpay.calls.models import CallEvent
from vcpay.extensions import db
from vcpay.integrations.stripe_api import forget_clients
from vcpay.mail.models import OutboundEmail
from vcpay.payments.models import PaymentRefund, PaymentState, RefundState
from vcpay.people.models import ClinicRole
from vcpay.people.services import find_user_by_email
from vcpay.webhooks.models import EventState, StripeEvent

ADMIN = "clinicadmin@harbourside.example"
ORG_ADMIN = "orgadmin@harbourside.example"
REFUND_KEY = re.compile(r'name="refund_key" type="hidden" value="([^"]+)"')


@pytest.fixture
def admin(app, gp):
    browser = app.test_client()
    sign_in(browser, ADMIN)
    return browser


def refund_page(browser, request) -> str:
    return browser.get(f"/payments/{request.id}/refund").get_data(as_text=True)


def refund_form(browser, request) -> dict:
    """The hidden fields of the refund form as shown: a fresh key each time."""
    page = refund_page(browser, request)
    return {
        "csrf_token": CSRF_FIELD.search(page).group(1),
        "refund_key": REFUND_KEY.search(page)[1],
    }


def refund(browser, request, amount="", reason="Charged twice", form=None):
    """Press Refund: part of it when ``amount`` is given, else all that remains."""
    extent = "part" if amount else "full"
    data = {**(form or refund_form(browser, request)), "extent": extent, "amount": amount}
    return browser.post(f"/payments/{request.id}/refund", data={**data, "reason": reason})


def rows() -> list[PaymentRefund]:
    db.session.rollback()
    return list(db.session.scalars(select(PaymentRefund).order_by(PaymentRefund.id)))


def refunds_at_stripe(platform, request) -> list:
    options = {"stripe_account": request.stripe_account_id}
    found = platform.v1.refunds.list({"payment_intent": request.payment_intent_id}, options)
    return found.data


def settled(webhooks) -> None:
    webhooks.wait_for_webhooks()
    process_received()


def emails_to(address: str) -> list[OutboundEmail]:
    db.session.rollback()
    query = select(OutboundEmail).filter_by(recipient=address).order_by(OutboundEmail.id)
    return list(db.session.scalars(query))


def test_a_partial_refund_then_the_rest(app, admin, clinician, gp, webhooks):
    request = paid_in_a_new_call(clinician, gp, webhooks)

    made = refund(admin, request, "20.00", "Follow-up was not needed")

    assert made.status_code == 303
    assert made.location.endswith(f"/payments/{request.id}")  # the payment's page
    assert (the_request().state, the_request().amount_refunded) == (
        PaymentState.PARTIALLY_REFUNDED,
        2000,
    )
    page = refund_page(admin, request)
    assert "Refunded A$20.00 to the patient&#39;s card." in page
    assert "Follow-up was not needed" in page and "A$80.00" in page
    settled(webhooks)

    assert refund(admin, request).status_code == 303  # all that remains

    settled(webhooks)
    assert (the_request().state, the_request().amount_refunded) == (PaymentState.REFUNDED, 10000)
    assert [(r.amount, r.state, r.requested_by.email) for r in rows()] == [
        (2000, RefundState.SUCCEEDED, ADMIN),
        (8000, RefundState.SUCCEEDED, ADMIN),
    ]
    platform = stripe_platform(app, webhooks)
    assert sorted(r.amount for r in refunds_at_stripe(platform, request)) == [2000, 8000]
    assert {r.stripe_refund_id for r in rows()} == {
        r.id for r in refunds_at_stripe(platform, request)
    }
    db.session.rollback()
    audited = db.session.scalars(select(AuditEntry).filter_by(action="payment.refunded")).all()
    assert [(a.details["amount"], a.actor.email) for a in audited] == [(2000, ADMIN), (8000, ADMIN)]
    assert refund_events_all(EventState.PROCESSED)
    assert "This payment has been refunded in full." in refund_page(admin, request)


def test_an_organisation_admin_may_refund(app, clinician, gp, webhooks):
    request = paid_in_a_new_call(clinician, gp, webhooks)
    org_admin = app.test_client()
    sign_in(org_admin, ORG_ADMIN)
    assert refund(org_admin, request, "10.00").status_code == 303
    assert [r.requested_by.email for r in rows()] == [ORG_ADMIN]


def test_more_than_remains_is_refused_saying_how_much_remains(app, admin, clinician, gp, webhooks):
    request = paid_in_a_new_call(clinician, gp, webhooks)
    assert refund(admin, request, "30.00").status_code == 303

    refused = refund(admin, request, "70.01")

    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "That is more than remains to refund: A$70.00 of the A$100.00 paid." in page
    assert len(rows()) == 1
    assert len(refunds_at_stripe(stripe_platform(app, webhooks), request)) == 1


def test_more_than_stripe_has_left_is_refused_with_what_stripe_says_remains(
    app, admin, clinician, gp, webhooks
):
    """Refunded in the Stripe dashboard a moment ago, before vcpay heard: Stripe refuses, and
    the admin is told what it has left."""
    request = paid_in_a_new_call(clinician, gp, webhooks)
    platform = stripe_platform(app, webhooks)
    options = {"stripe_account": request.stripe_account_id}
    platform.v1.refunds.create(
        {"payment_intent": request.payment_intent_id, "amount": 4000}, options
    )

    form = refund_form(admin, request)
    refused = refund(admin, request, "75.00", form=form)

    assert refused.status_code == 400
    page = refused.get_data(as_text=True)
    assert "A$60.00 of the A$100.00 paid" in page
    assert len(refunds_at_stripe(platform, request)) == 1
    assert rows() == []
    # Stripe keeps its refusal for that key: the form comes back with a new one, which works.
    again = {"csrf_token": form["csrf_token"], "refund_key": REFUND_KEY.search(page)[1]}
    assert again["refund_key"] != form["refund_key"]
    assert refund(admin, request, "60.00", form=again).status_code == 303
    assert len(refunds_at_stripe(platform, request)) == 2


@pytest.mark.parametrize(
    ("amount", "reason", "message"),
    [
        ("", "Charged twice", "Enter the amount to refund"),
        ("20", "", "Enter the reason for the refund"),
        ("20", "x" * 301, "Keep the reason to 300 characters or fewer."),
        ("20", "Charged\ttwice", "without tabs or other control characters"),
        ("-5", "Charged twice", "The amount must be more than zero."),
        ("1,00.00", "Charged twice", "Enter the amount as a number in dollars and cents"),
        ("20.001", "Charged twice", "at most two decimal places"),
        ("٢٠", "Charged twice", "Enter the amount as a number in dollars and cents"),
    ],
)
def test_a_refund_form_that_is_wrong_says_what_to_change_and_refunds_nothing(
    app, admin, clinician, gp, webhooks, amount, reason, message
):
    request = paid_in_a_new_call(clinician, gp, webhooks)
    form = refund_form(admin, request)
    data = {**form, "extent": "part", "amount": amount, "reason": reason}
    refused = admin.post(f"/payments/{request.id}/refund", data=data)
    assert refused.status_code == 400
    assert message in refused.get_data(as_text=True)
    assert rows() == []
    assert refunds_at_stripe(stripe_platform(app, webhooks), request) == []


def test_a_double_click_makes_one_refund(app, admin, clinician, gp, webhooks):
    request = paid_in_a_new_call(clinician, gp, webhooks)
    form = refund_form(admin, request)

    first = refund(admin, request, "25.00", form=form)
    second = refund(admin, request, "25.00", form=form)

    assert (first.status_code, second.status_code) == (303, 303)
    assert "already asked for; it was not made twice" in refund_page(admin, request)
    assert len(rows()) == 1
    assert len(refunds_at_stripe(stripe_platform(app, webhooks), request)) == 1
    assert the_request().amount_refunded == 2500


def test_stripe_unreachable_changes_nothing_and_says_so(app, admin, clinician, gp, webhooks):
    request = paid_in_a_new_call(clinician, gp, webhooks)
    form = refund_form(admin, request)
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # nothing listens there
    forget_clients()

    refused = refund(admin, request, "25.00", form=form)

    assert refused.status_code == 503
    assert "Stripe could not be reached, so nothing was refunded" in refused.get_data(as_text=True)
    assert rows() == []
    assert (the_request().state, the_request().amount_refunded) == (PaymentState.PAID, 0)
    db.session.rollback()
    assert db.session.scalars(select(AuditEntry).filter_by(action="payment.refunded")).all() == []
    app.config["STRIPE_API_BASE"] = webhooks.base
    forget_clients()
    assert refund(admin, request, "25.00", form=form).status_code == 303  # the same form, later
    assert [r.amount for r in rows()] == [2500]


def test_stripe_failing_changes_nothing(app, admin, clinician, gp, webhooks):
    request = paid_in_a_new_call(clinician, gp, webhooks)
    webhooks.fault(path_prefix="/v1/refunds", status=500, count=1)
    refused = refund(admin, request, "25.00")
    assert refused.status_code == 503
    assert rows() == []
    assert refunds_at_stripe(stripe_platform(app, webhooks), request) == []


REFUND_EVENT_TYPES = (
    "charge.refunded",
    "charge.refund.updated",
    "refund.created",
    "refund.updated",
    "refund.failed",
)


def refund_events_all(state: EventState) -> bool:
    found = [e for e in received() if e.type in REFUND_EVENT_TYPES]
    assert found, "no refund events arrived"
    return {(e.type, e.state, e.last_error) for e in found} == {
        (e.type, state, None) for e in found
    }


def final_state():
    request = the_request()
    return (
        request.state,
        request.amount_refunded,
        [(r.amount, r.state) for r in rows()],
        len(emails_to(request.patient_email)),
    )


def test_refund_events_in_any_order_and_repeated_end_in_the_same_state(
    app, admin, clinician, gp, webhooks
):
    """A refund Stripe decides later: its events held, then delivered newest first, then all
    processed again; the refund, the request and the patient's email end as Stripe says."""
    request = paid_in_a_new_call(clinician, gp, webhooks)
    webhooks.refunds_start(request.stripe_account_id, "pending")
    webhooks.wait_for_webhooks()
    webhooks.webhook_fault("hold", count=50)

    assert refund(admin, request, "20.00").status_code == 303
    [row] = rows()
    assert row.state == RefundState.PENDING
    assert "Stripe is processing the refund of A$20.00" in refund_page(admin, request)
    receipts = len(emails_to(request.patient_email))
    webhooks.refund_succeeds(row.stripe_refund_id)
    webhooks.release_held("reverse")
    settled(webhooks)

    types = [e.type for e in received()]
    assert types.index("refund.updated") < types.index("refund.created")
    expected = (
        PaymentState.PARTIALLY_REFUNDED,
        2000,
        [(2000, RefundState.SUCCEEDED)],
        receipts + 1,
    )
    assert final_state() == expected
    db.session.execute(update(StripeEvent).values(state=EventState.RECEIVED.value))
    db.session.commit()
    refunded_events = db.session.scalar(
        select(CallEvent.id).filter_by(kind="payment_refunded").order_by(CallEvent.id.desc())
    )
    process_received()  # every event again
    assert final_state() == expected
    db.session.rollback()
    assert (
        db.session.scalar(
            select(CallEvent.id).filter_by(kind="payment_refunded").order_by(CallEvent.id.desc())
        )
        == refunded_events
    )


def test_a_refund_made_in_the_stripe_dashboard_shows_up(app, admin, clinician, gp, webhooks):
    request = paid_in_a_new_call(clinician, gp, webhooks)
    platform = stripe_platform(app, webhooks)
    options = {"stripe_account": request.stripe_account_id}

    platform.v1.refunds.create(
        {"payment_intent": request.payment_intent_id, "amount": 1500}, options
    )
    settled(webhooks)

    [row] = rows()
    assert (row.amount, row.state, row.reason, row.requested_by) == (
        1500,
        RefundState.SUCCEEDED,
        "Made in Stripe",
        None,
    )
    assert (the_request().state, the_request().amount_refunded) == (
        PaymentState.PARTIALLY_REFUNDED,
        1500,
    )
    page = refund_page(admin, request)
    assert "Made in Stripe" in page and "A$15.00" in page
    assert "A$85.00" in page  # what remains, offered in full
    [notice] = [e for e in emails_to(request.patient_email) if "refund" in e.subject.lower()]
    assert "A$15.00" in notice.body_text


def test_a_failed_refund_is_failed_its_money_back_and_the_admins_told(
    app, admin, clinician, gp, webhooks
):
    request = paid_in_a_new_call(clinician, gp, webhooks)
    db.session.rollback()
    find_user_by_email(ADMIN).payment_notices = True
    db.session.commit()
    webhooks.refunds_start(request.stripe_account_id, "pending")
    assert refund(admin, request, "30.00").status_code == 303
    settled(webhooks)
    [row] = rows()
    assert (row.state, the_request().amount_refunded) == (RefundState.PENDING, 3000)
    emails_before = len(emails_to(request.patient_email))

    webhooks.refund_fails(row.stripe_refund_id, "expired_or_canceled_card")
    settled(webhooks)

    [row] = rows()
    assert (row.state, row.failure_reason) == (RefundState.FAILED, "expired_or_canceled_card")
    assert (the_request().state, the_request().amount_refunded) == (PaymentState.PAID, 0)
    assert len(emails_to(request.patient_email)) == emails_before  # no refund to tell of
    [notice] = emails_to(ADMIN)
    assert "A refund failed" in notice.subject
    assert (
        "A$30.00" in notice.body_text
        and "the card has expired or was cancelled" in notice.body_text
    )
    assert f"http://127.0.0.1:5000/payments/{request.id}\n" in notice.body_text
    page = refund_page(admin, request)
    assert "Failed" in page and "A$100.00" in page
    assert refund_events_all(EventState.PROCESSED)


def test_the_patients_refund_notice_is_in_the_language_they_paid_in(
    app, admin, clinician, gp, webhooks
):
    call = start_call(clinician, gp)
    patient = join(app, call, "Pat Citizen")
    ask(clinician, call, "85.00", "Consultation")
    request = the_request()
    assert pay_now(patient, call, request, **{"Accept-Language": "sr"}).status_code == 303
    pay_and_process(webhooks, request)
    settled(webhooks)

    assert refund(admin, the_request(), "20.00").status_code == 303
    settled(webhooks)

    [_receipt, notice] = emails_to(the_request().patient_email)
    assert notice.dedupe_key.startswith("refund:re_")
    # Written in Serbian: lines the catalogue already has, and the money as Serbian writes it.
    assert "Клиника Harbourside GP Clinic вам је вратила 20,00" in notice.body_text  # noqa: RUF001
    # From the clinic: its name heads the notice; vcpay is named in the last line only.
    heading, *body, footer = re.split(r"\n\s*\n", notice.body_text.strip())
    assert heading == "Harbourside GP Clinic"
    assert "vcpay" not in "\n".join(body) and "vcpay" in footer
    assert "Картица: Visa која се завршава на 4242" in notice.body_text  # noqa: RUF001
    assert "20,00" in notice.body_text
    # Both come from the clinic by name, in the language the patient paid in.
    assert (_receipt.sender_name, notice.sender_name) == ("Harbourside GP Clinic",) * 2
    assert notice.locale == "sr_Cyrl"


def test_the_call_screens_show_the_refunded_amount(app, admin, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    patient = join(app, call)
    ask(clinician, call, "85.00")
    request = the_request()
    pay_and_process(webhooks, request)
    settled(webhooks)

    refund(admin, request, "20.00")

    staff_panel = clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)
    patient_panel = patient.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    assert "Refunded A$20.00 of A$85.00" in staff_panel
    assert "Refunded A$20.00 of A$85.00" in patient_panel
    db.session.rollback()
    announced = db.session.scalars(
        select(CallEvent).filter_by(call_id=call.id, kind="payment_refunded")
    ).all()
    assert [(e.data["refunded"], e.data["amount"]) for e in announced] == [("A$20.00", "A$85.00")]

    refund(admin, request)

    staff_panel = clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)
    patient_panel = patient.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    assert ">Refunded<" in staff_panel and "of A$85.00" not in staff_panel
    assert ">Refunded<" in patient_panel


def test_a_clinician_cannot_refund(app, clinician, gp, webhooks):
    request = paid_in_a_new_call(clinician, gp, webhooks)
    assert clinician.get(f"/payments/{request.id}/refund").status_code == 403
    page = clinician.get("/calls/").get_data(as_text=True)
    data = {"csrf_token": CSRF_FIELD.search(page)[1], "refund_key": "k" * 24, "extent": "full"}
    posted = clinician.post(f"/payments/{request.id}/refund", data={**data, "reason": "Mine"})
    assert posted.status_code == 403
    assert rows() == []


def test_an_admin_of_another_organisation_finds_nothing(app, clinician, gp, webhooks):
    request = paid_in_a_new_call(clinician, gp, webhooks)
    other = factories.organisation("Bayside Care", "Bayside Clinic")
    factories.clinic_person("admin@bayside.example", other.clinics[0], ClinicRole.CLINIC_ADMIN)
    db.session.commit()
    stranger = app.test_client()
    sign_in(stranger, "admin@bayside.example", factories.PASSWORD)
    assert stranger.get(f"/payments/{request.id}/refund").status_code == 404
    page = stranger.get("/").get_data(as_text=True)
    data = {"csrf_token": CSRF_FIELD.search(page)[1], "refund_key": "k" * 24, "extent": "full"}
    posted = stranger.post(f"/payments/{request.id}/refund", data={**data, "reason": "Theirs"})
    assert posted.status_code == 404
    assert rows() == []
    assert stranger.get("/payments/2147483648/refund").status_code == 404
