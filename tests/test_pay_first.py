"""A fee before joining: set when the call is started, paid on the pay-first page before the
patient sees the call, or waived by the clinician; on the Stripe stand-in over HTTP.

The real ``stripe`` library talks HTTP to the stand-in, whose webhooks reach vcpay over HTTP;
stored events are processed as a worker would.
"""

import re
from functools import partial

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import CSRF_FIELD, csrf_token, sign_in
from tests.payment_steps import (
    CLINICIAN,
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    join,
    kinds,
    read_stream,
    recognise,
    requests_made,
)
from tests.stripe_standin import link_clinic, process_received, wait_for_events
from tests.test_races import at_once
from vcpay.audit.models import AuditEntry
from vcpay.calls.events import CallEventKind
from vcpay.calls.models import Call, CallEvent, Participant
from vcpay.client_payments.models import AccountRoute
from vcpay.client_payments.stripe_link import live_link
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi, forget_clients
from vcpay.mail.models import OutboundEmail
from vcpay.payments import fees
from vcpay.payments.models import CallFee, FeeWaiver, PaymentRequest, PaymentState
from vcpay.people.models import ClinicRole, User


def start_with_fee(browser, clinic, amount="60.00", description="Consultation fee"):
    token = csrf_token(browser, "/calls/")
    data = {
        "csrf_token": token,
        "clinic_id": clinic.id,
        "title": "Pat Citizen, 10:30",
        "fee_amount": amount,
        "fee_description": description,
    }
    return browser.post("/calls/start", data=data)


def call_with_fee(browser, clinic, **fee) -> Call:
    response = start_with_fee(browser, clinic, **fee)
    assert response.status_code == 303, response.get_data(as_text=True)
    return db.session.get(Call, int(response.location.rsplit("/", 1)[1]))


def fee_page(call) -> str:
    return f"/join/{call.guest_token}/fee"


def press_pay_now(patient, call, **extra):
    page = patient.get(fee_page(call)).get_data(as_text=True)
    data = {"csrf_token": CSRF_FIELD.search(page).group(1), **extra}
    return patient.post(fee_page(call), data=data)


def waive(browser, call, participant_id):
    token = csrf_token(browser, "/calls/")
    return browser.post(
        f"/calls/{call.id}/participants/{participant_id}/waive-fee", data={"csrf_token": token}
    )


def patient_id(call, name="Pat Citizen") -> int:
    db.session.rollback()
    return next(p.id for p in db.session.get(Call, call.id).participants if p.display_name == name)


def fee_status(clinician, call) -> str:
    panel = clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)
    return panel.split('data-fee="')[1].split('"')[0] if 'data-fee="' in panel else ""


def calls_made() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count(Call.id)))


def test_the_start_form_offers_a_fee_where_the_clinic_takes_payments(app, clinician, gp):
    page = clinician.get("/calls/").get_data(as_text=True)
    assert "Fee before joining (optional)" in page
    assert page.count('name="fee_amount"') == 1  # the GP clinic's form, not the physio's


def test_a_patient_pays_the_fee_then_sees_the_call(app, clinician, gp, webhooks):
    call = call_with_fee(clinician, gp)
    assert "Each patient pays A$60.00 (Consultation fee)" in clinician.get(
        f"/calls/{call.id}"
    ).get_data(as_text=True)
    asked = app.test_client().get(f"/join/{call.guest_token}").get_data(as_text=True)
    assert (
        "Harbourside GP Clinic asks you to pay A$60.00 (Consultation fee) before the call"
    ) in asked
    patient = join(app, call)
    sent = patient.get(f"/join/{call.guest_token}")
    assert sent.status_code == 303 and sent.location == fee_page(call)
    page = patient.get(fee_page(call)).get_data(as_text=True)
    assert "A$60.00" in page and "Consultation fee" in page and "Pay now" in page
    assert patient.get(f"/join/{call.guest_token}/panel").status_code == 403
    assert fee_status(clinician, call) == "due"

    to_checkout = press_pay_now(patient, call)
    [payment] = requests_made()
    assert to_checkout.status_code == 303 and to_checkout.location == payment.checkout_url
    assert payment.pay_first and payment.amount == 6000
    assert payment.description == "Consultation fee"
    assert payment.payer_id == patient_id(call)

    webhooks.pay(payment.checkout_session_id, "4242424242424242", email="pat@example.org")
    back = patient.get(
        f"/join/{call.guest_token}/fee/{payment.request_key}/done"
        f"?session_id={payment.checkout_session_id}"
    )
    assert back.status_code == 303 and back.location == f"/join/{call.guest_token}"
    screen = patient.get(back.location)
    assert screen.status_code == 200
    assert "You joined as Pat Citizen." in screen.get_data(as_text=True)
    assert patient.get(fee_page(call)).location == f"/join/{call.guest_token}"
    assert fee_status(clinician, call) == "paid"
    panel = clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)
    assert "Consultation fee" in panel and "Payment received" in panel  # the list and popup
    [paid] = requests_made()
    assert paid.state == PaymentState.PAID
    [receipt] = db.session.scalars(select(OutboundEmail)).all()
    assert receipt.recipient == "pat@example.org"
    assert "payment_paid" in kinds(call)
    webhooks.wait_for_webhooks()
    process_received()  # the webhook, later, changes nothing
    assert requests_made()[0].state == PaymentState.PAID


def test_each_patient_pays_their_own_fee(app, clinician, gp, webhooks):
    call = call_with_fee(clinician, gp)
    pat, carer = join(app, call, "Pat Citizen"), join(app, call, "Carer")
    press_pay_now(pat, call)
    [payment] = requests_made()
    webhooks.pay(payment.checkout_session_id)
    pat.get(
        f"/join/{call.guest_token}/fee/{payment.request_key}/done"
        f"?session_id={payment.checkout_session_id}"
    )
    assert pat.get(f"/join/{call.guest_token}").status_code == 200
    assert carer.get(f"/join/{call.guest_token}").location == fee_page(call)


def test_a_patient_who_rejoins_and_is_recognised_has_paid_already(app, clinician, gp, webhooks):
    call = call_with_fee(clinician, gp)
    pat = join(app, call, "Pat Citizen")
    press_pay_now(pat, call)
    [payment] = requests_made()
    webhooks.pay(payment.checkout_session_id)
    webhooks.wait_for_webhooks()
    process_received()
    phone = join(app, call, "Pat Citizen")  # a name proves nothing: the phone must pay
    assert phone.get(f"/join/{call.guest_token}").location == fee_page(call)
    db.session.rollback()
    first, second = sorted(p.id for p in db.session.get(Call, call.id).participants[1:])
    assert recognise(clinician, call, second, first).status_code == 303
    assert phone.get(f"/join/{call.guest_token}").status_code == 200
    assert "participant_recognised" in kinds(call)  # the pay-first page moves on by itself


def test_going_back_from_checkout_leaves_the_patient_on_the_pay_first_page(
    app, clinician, gp, webhooks
):
    call = call_with_fee(clinician, gp)
    patient = join(app, call)
    first = press_pay_now(patient, call)
    [payment] = requests_made()
    left = patient.get(f"/join/{call.guest_token}/fee/{payment.request_key}/left")
    assert left.location == f"{fee_page(call)}?back=left"
    page = patient.get(left.location).get_data(as_text=True)
    assert "You went back without paying. Nothing was charged." in page
    assert "Pay now" in page
    again = press_pay_now(patient, call)
    assert again.location == first.location  # the same session: no second open request
    assert len(requests_made()) == 1
    assert patient.get(f"/join/{call.guest_token}").location == fee_page(call)


def test_an_expired_payment_asks_again_with_a_new_session(app, clinician, gp, webhooks):
    call = call_with_fee(clinician, gp)
    patient = join(app, call)
    press_pay_now(patient, call)
    [payment] = requests_made()
    webhooks.expire_now(payment.checkout_session_id)
    wait_for_events("checkout.session.expired")
    process_received()
    assert requests_made()[0].state == PaymentState.EXPIRED
    assert patient.get(f"/join/{call.guest_token}").location == fee_page(call)
    page = patient.get(fee_page(call)).get_data(as_text=True)
    assert "Your time to pay ran out. Nothing was charged." in page
    again = press_pay_now(patient, call)
    expired, fresh = requests_made()
    assert fresh.state == PaymentState.REQUESTED and fresh.pay_first
    assert fresh.checkout_session_id != expired.checkout_session_id
    assert again.location == fresh.checkout_url
    assert fee_status(clinician, call) == "due"


def test_stripe_unreachable_on_pay_now_says_so_and_makes_nothing(app, clinician, gp):
    call = call_with_fee(clinician, gp)
    patient = join(app, call)
    page = patient.get(fee_page(call)).get_data(as_text=True)
    app.config.update(STRIPE_API_BASE="http://127.0.0.1:1", STRIPE_TIMEOUT_SECONDS=1.0)
    forget_clients()
    token = CSRF_FIELD.search(page).group(1)
    refused = patient.post(fee_page(call), data={"csrf_token": token})
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert "Stripe could not create the payment, so nothing was requested" in text
    assert "Pay now" in text  # the patient can try again
    assert requests_made() == []


def test_the_clinician_waives_the_fee_and_the_patient_sees_the_call(app, clinician, gp):
    call = call_with_fee(clinician, gp)
    patient = join(app, call)
    pat = patient_id(call)
    done = waive(clinician, call, pat)
    assert done.location == f"/calls/{call.id}"
    assert "Fee waived: Pat Citizen sees the call now." in clinician.get(done.location).get_data(
        as_text=True
    )
    assert patient.get(f"/join/{call.guest_token}").status_code == 200
    assert fee_status(clinician, call) == "waived"
    assert "fee_waived" in kinds(call)
    again = waive(clinician, call, pat)
    assert "Nothing to waive" in clinician.get(again.location).get_data(as_text=True)
    assert db.session.scalar(select(func.count(FeeWaiver.id))) == 1
    [entry] = db.session.scalars(select(AuditEntry).filter_by(action="payment.fee_waived")).all()
    assert entry.details["participant"] == pat
    admin = app.test_client()
    sign_in(admin, "clinicadmin@harbourside.example")
    audit = admin.get("/audit/?kind=payment").get_data(as_text=True)
    assert "payment.fee_waived" in audit and "payment.fee_set" in audit
    assert requests_made() == []


def test_the_patients_stream_carries_the_waiver_while_they_wait_to_pay(app, clinician, gp):
    app.config["STREAM_MAX_SECONDS"] = 1
    call = call_with_fee(clinician, gp)
    patient = join(app, call)
    page = patient.get(fee_page(call)).get_data(as_text=True)
    events_url = f"/join/{call.guest_token}/events"
    assert f'data-events-url="{events_url}"' in page
    waive(clinician, call, patient_id(call))
    seen = read_stream(patient, f"{events_url}?after=0")
    assert [e["kind"] for e in seen][-1] == "fee_waived"
    assert seen[-1]["name"] == "Pat Citizen"


def test_a_fee_paid_with_a_method_that_settles_later_waits_then_lets_the_patient_in(
    app, clinician, gp, webhooks
):
    call = call_with_fee(clinician, gp)
    patient = join(app, call)
    press_pay_now(patient, call)
    [payment] = requests_made()
    webhooks.pay(payment.checkout_session_id, delayed=True)
    webhooks.wait_for_webhooks()
    process_received()
    assert requests_made()[0].state == PaymentState.PROCESSING
    page = patient.get(fee_page(call)).get_data(as_text=True)
    assert "Your bank is confirming the payment." in page and "Pay now" not in page
    assert fee_status(clinician, call) == "processing"
    webhooks.settle(payment.checkout_session_id, "succeeded")
    webhooks.wait_for_webhooks()
    process_received()
    assert patient.get(f"/join/{call.guest_token}").status_code == 200
    assert fee_status(clinician, call) == "paid"


def test_a_paid_fee_is_in_the_clinics_payments_like_any_other(app, clinician, gp, webhooks):
    call = call_with_fee(clinician, gp)
    patient = join(app, call)
    press_pay_now(patient, call)
    [payment] = requests_made()
    webhooks.pay(payment.checkout_session_id)
    webhooks.wait_for_webhooks()
    process_received()
    admin = app.test_client()
    sign_in(admin, "clinicadmin@harbourside.example")
    listing = admin.get("/payments/").get_data(as_text=True)
    assert "Consultation fee" in listing and "A$60.00" in listing
    detail = admin.get(f"/payments/{payment.id}").get_data(as_text=True)
    assert "Pat Citizen" in detail and "Refund" in detail


def test_waiving_closes_a_checkout_page_of_the_fee_still_open(app, clinician, gp, webhooks):
    call = call_with_fee(clinician, gp)
    patient = join(app, call)
    press_pay_now(patient, call)
    waive(clinician, call, patient_id(call))
    [payment] = requests_made()
    assert payment.state == PaymentState.CANCELLED
    assert webhooks.sessions()[0]["status"] == "expired"  # nobody can pay it any more
    assert patient.get(f"/join/{call.guest_token}").status_code == 200
    assert fee_status(clinician, call) == "waived"


@pytest.mark.parametrize(
    "amount, description, why",
    [
        ("0", "Consultation", "The amount must be more than zero."),
        ("ten", "Consultation", "Enter the amount as a number in dollars and cents"),
        ("0.20", "Consultation", "The smallest amount Stripe accepts is A$0.50."),
        ("1000000", "Consultation", "The largest amount Stripe accepts is A$999,999.99."),
        ("85.505", "Consultation", "An amount has at most two decimal places"),
        ("", "Consultation", "Enter the amount to request"),
        ("85", "", "Enter a description"),
        ("85", "x" * 121, "Keep the description to 120 characters or fewer."),
    ],
)
def test_a_bad_fee_starts_no_call_and_says_why(app, clinician, gp, amount, description, why):
    before = calls_made()
    response = start_with_fee(clinician, gp, amount, description)
    assert response.status_code == 303 and response.location == "/calls/"
    page = clinician.get("/calls/").get_data(as_text=True)
    assert "No call was started:" in page and why in page
    assert calls_made() == before
    assert db.session.scalar(select(func.count(CallFee.id))) == 0
    # The form comes back as sent, the field at fault marked and saying why; once.
    assert 'value="Pat Citizen, 10:30"' in page
    at_fault = (
        "amount" if amount in ("0", "ten", "0.20", "1000000", "85.505", "") else "description"
    )
    field = re.search(rf'<input id="fee-{at_fault}-{gp.id}"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in field and f"fee-error-{gp.id}" in field
    sent = {"amount": amount, "description": description}[at_fault]
    assert f'value="{sent}"' in field
    again = clinician.get("/calls/").get_data(as_text=True)
    assert why not in again and 'aria-invalid="true"' not in again


def test_a_fee_is_refused_where_the_clinic_cannot_take_payments(app, clinician, gp):
    gp.gateway_enabled_at = None
    db.session.commit()
    response = start_with_fee(clinician, gp)
    page = clinician.get(response.location).get_data(as_text=True)
    assert "Payments are not switched on for Harbourside GP Clinic" in page
    assert calls_made() == 0
    assert 'name="fee_amount"' not in page


def test_a_call_without_a_fee_lets_the_patient_straight_in(app, clinician, gp):
    call = call_with_fee(clinician, gp, amount=" ", description="")
    asked = app.test_client().get(f"/join/{call.guest_token}").get_data(as_text=True)
    assert "before the call: by card on Stripe" not in asked
    patient = join(app, call)
    assert patient.get(f"/join/{call.guest_token}").status_code == 200
    assert patient.get(fee_page(call)).location == f"/join/{call.guest_token}"
    assert db.session.scalar(select(func.count(CallFee.id))) == 0


def test_who_may_waive_and_reach_a_fee(app, clinician, gp, webhooks):
    call = call_with_fee(clinician, gp)
    patient = join(app, call)
    pat = patient_id(call)
    # The patient cannot waive: the clinician's routes need a clinician's sign-in.
    token = CSRF_FIELD.search(patient.get(fee_page(call)).get_data(as_text=True)).group(1)
    refused = patient.post(
        f"/calls/{call.id}/participants/{pat}/waive-fee", data={"csrf_token": token}
    )
    assert refused.status_code == 302 and "/sign-in" in refused.location
    # A clinician of another clinic gets 404; a clinic admin who does not consult, 403.
    bayside = factories.organisation("Bayside Medical", "Bayside Clinic").clinics[0]
    factories.clinic_person("doc@bayside.example", bayside, ClinicRole.CLINICIAN)
    db.session.commit()
    stranger = app.test_client()
    sign_in(stranger, "doc@bayside.example", factories.PASSWORD)
    assert waive(stranger, call, pat).status_code == 404
    admin = app.test_client()
    sign_in(admin, "clinicadmin@harbourside.example")
    assert waive(admin, call, pat).status_code == 403
    # Without the CSRF token nothing is waived.
    assert clinician.post(f"/calls/{call.id}/participants/{pat}/waive-fee").status_code == 400
    # A participant of another call is not one of this call's.
    other = call_with_fee(clinician, gp, amount="", description="")
    stranger_patient = join(app, other, "Someone else")
    assert waive(clinician, call, patient_id(other, "Someone else")).status_code == 404
    assert db.session.scalar(select(func.count(FeeWaiver.id))) == 0
    # Another call's link does not reach this call's fee: not joined here, so the join form.
    assert stranger_patient.get(fee_page(call)).location == f"/join/{call.guest_token}"
    # The amount is the clinic's, whatever the patient sends.
    press_pay_now(patient, call, amount="0.50", description="Nothing")
    [payment] = requests_made()
    assert (payment.amount, payment.description) == (6000, "Consultation fee")
    # A fee's return pages answer only for the call's own payments.
    assert (
        stranger_patient.get(
            f"/join/{other.guest_token}/fee/{payment.request_key}/left"
        ).status_code
        == 404
    )
    assert patient.get(f"/join/{call.guest_token}/fee/not-a-key/done").status_code == 404
    # Pay now needs the page's CSRF token.
    assert patient.post(fee_page(call)).status_code == 400


def _pay_now(call_id: int, patient_id: int) -> str:
    """Pay now as the patient's page does it, in a rival's own session."""
    call = db.session.get(Call, call_id)
    payment = fees.checkout_for(
        call, fees.fee_of(call), db.session.get(Participant, patient_id), StripeApi.for_app()
    )
    db.session.commit()
    return payment.request_key


def _waive(call_id: int, patient_id: int, clinician_id: int) -> bool:
    call = db.session.get(Call, call_id)
    patient, clinician = db.session.get(Participant, patient_id), db.session.get(User, clinician_id)
    waived = fees.waive(call, patient, clinician)
    db.session.commit()
    return waived


@pytest.mark.races
def test_pay_now_twice_at_once_makes_one_payment_and_one_session(
    app, clinician, gp, stripe_control
):
    for _round in range(6):
        call = call_with_fee(clinician, gp)
        join(app, call)
        pat = patient_id(call)
        keys = at_once(app, partial(_pay_now, call.id, pat), partial(_pay_now, call.id, pat))
        assert keys[0] == keys[1]
        query = select(func.count(PaymentRequest.id)).filter_by(call_id=call.id)
        assert db.session.scalar(query) == 1
        sessions = [s for s in stripe_control.sessions() if s["client_reference_id"] == keys[0]]
        assert len(sessions) == 1, "two Checkout Sessions for one fee"


@pytest.mark.races
def test_waive_twice_at_once_waives_once(app, clinician, gp):
    doctor = db.session.scalar(select(User).filter_by(email="clinician@harbourside.example")).id
    for _round in range(6):
        call = call_with_fee(clinician, gp)
        join(app, call)
        pat = patient_id(call)
        waived = at_once(
            app, partial(_waive, call.id, pat, doctor), partial(_waive, call.id, pat, doctor)
        )
        assert sorted(waived) == [False, True]
        assert (
            db.session.scalar(select(func.count(FeeWaiver.id)).filter_by(participant_id=pat)) == 1
        )
        events = select(func.count(CallEvent.id)).filter_by(
            call_id=call.id, kind=CallEventKind.FEE_WAIVED.value
        )
        assert db.session.scalar(events) == 1


def test_a_routed_clinicians_fee_is_paid_into_their_account(
    app, clinician, gp, stripe_control, webhooks
):
    """The fee takes the same road as Request Payment: the call's clinician's account."""
    default = live_link(gp)
    own = link_clinic(stripe_control, gp, display_name="Dr Rivers Pty Ltd")
    person = db.session.scalar(select(User).filter_by(email=CLINICIAN))
    db.session.add(AccountRoute(clinic_id=gp.id, clinician_id=person.id, link_id=own.id))
    db.session.commit()
    call = call_with_fee(clinician, gp)
    patient = join(app, call)
    press_pay_now(patient, call)
    [payment] = requests_made()
    assert payment.stripe_account_id == own.account_id != default.account_id
    assert [s["id"] for s in webhooks.sessions(account=own.account_id)] == [
        payment.checkout_session_id
    ]
    webhooks.pay(payment.checkout_session_id)
    webhooks.wait_for_webhooks()
    process_received()
    assert requests_made()[0].state == PaymentState.PAID
    assert fee_status(clinician, call) == "paid"
