"""Request Payment in a call, paid on the Stripe stand-in's Checkout, every way it can go.

The real ``stripe`` library talks HTTP to the stand-in, whose webhooks reach vcpay over HTTP;
stored events are processed as a worker would.
"""

import json
import re
import time
from datetime import timedelta

import pytest
import stripe
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import delete, select, update

from tests import factories
from tests.conftest import CSRF_FIELD, csrf_token, sign_in
from tests.stripe_standin import link_clinic, process_received, received, wait_for_events
from vcpay.audit.models import AuditEntry
from vcpay.calls import stream as call_stream
from vcpay.calls.models import Call, CallEvent, Participant
from vcpay.client_payments.links import remove_link
from vcpay.client_payments.models import StripeLink
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_gateway import StripeGateway, forget_clients
from vcpay.mail.models import OutboundEmail
from vcpay.payments import receipts, services
from vcpay.payments.models import PaymentRequest, PaymentState
from vcpay.payments.tasks import reconcile_thresholds
from vcpay.people.demo import seed_demo
from vcpay.people.models import Clinic, ClinicMembership, ClinicRole, User
from vcpay.webhooks.models import EventState

CLINICIAN = "clinician@harbourside.example"


@pytest.fixture
def gp(app, stripe_control):
    """The GP clinic: gateway on, its Stripe account linked with charges enabled."""
    organisation = seed_demo(enable_gateway=True)
    clinic = next(c for c in organisation.clinics if c.name == "Harbourside GP Clinic")
    link_clinic(stripe_control, clinic)
    db.session.commit()
    return clinic


@pytest.fixture
def clinician(app, gp):
    browser = app.test_client()
    sign_in(browser, CLINICIAN)
    return browser


def start_call(browser, clinic, title="Pat Citizen, 10:30") -> Call:
    token = csrf_token(browser, "/calls/")
    response = browser.post(
        "/calls/start", data={"csrf_token": token, "clinic_id": clinic.id, "title": title}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return db.session.get(Call, int(response.location.rsplit("/", 1)[1]))


def join(app, call, name="Pat Citizen"):
    patient = app.test_client()
    token = csrf_token(patient, f"/join/{call.guest_token}")
    response = patient.post(
        f"/join/{call.guest_token}", data={"csrf_token": token, "display_name": name}
    )
    assert response.status_code == 303
    return patient


def request_form(browser, call) -> dict:
    page = browser.get(f"/calls/{call.id}").get_data(as_text=True)
    key = page.split('name="request_key" type="hidden" value="')[1].split('"')[0]
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    return {"csrf_token": token, "request_key": key}


def ask(browser, call, amount="85.00", description="Consultation", form=None):
    data = {**(form or request_form(browser, call)), "amount": amount, "description": description}
    return browser.post(f"/calls/{call.id}/payment-requests", data=data)


def requests_made() -> list[PaymentRequest]:
    db.session.rollback()
    return list(db.session.scalars(select(PaymentRequest).order_by(PaymentRequest.id)))


def the_request() -> PaymentRequest:
    [request] = requests_made()
    return request


def latest_event(call) -> int:
    db.session.rollback()
    return max(e.id for e in db.session.scalars(select(CallEvent).filter_by(call_id=call.id)))


def kinds_after(call, after: int) -> list[str]:
    db.session.rollback()
    query = select(CallEvent).filter_by(call_id=call.id).where(CallEvent.id > after)
    return [e.kind for e in db.session.scalars(query.order_by(CallEvent.id))]


def kinds(call, audience=None) -> list[str]:
    db.session.rollback()
    query = select(CallEvent).filter_by(call_id=call.id).order_by(CallEvent.id)
    if audience:
        query = query.filter_by(audience=audience)
    return [e.kind for e in db.session.scalars(query)]


# Calls and the guest link.


def test_a_clinician_starts_a_call_and_the_patient_joins_with_the_link_and_a_name(
    app, clinician, gp
):
    call = start_call(clinician, gp)
    page = clinician.get(f"/calls/{call.id}").get_data(as_text=True)
    assert f"http://127.0.0.1:5000/join/{call.guest_token}" in page
    assert "Apps & Tools" in page and "Request Payment" in page
    assert len(call.guest_token) >= 40
    patient = join(app, call, "Pat Citizen")
    screen = patient.get(f"/join/{call.guest_token}").get_data(as_text=True)
    assert "You joined as Pat Citizen." in screen
    assert "Pat Citizen" in clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)
    assert "Pat Citizen, 10:30" in clinician.get("/calls/").get_data(as_text=True)


def test_joining_needs_a_name(app, clinician, gp):
    call = start_call(clinician, gp)
    patient = app.test_client()
    token = csrf_token(patient, f"/join/{call.guest_token}")
    response = patient.post(
        f"/join/{call.guest_token}", data={"csrf_token": token, "display_name": " "}
    )
    assert response.status_code == 400
    assert "Enter the name the clinician will see." in response.get_data(as_text=True)


def test_the_guest_link_reaches_one_call_and_stops_after_the_call_ends(app, clinician, gp):
    call = start_call(clinician, gp)
    other = start_call(clinician, gp, "Someone else")
    patient = join(app, call)
    assert patient.get("/join/not-a-real-token").status_code == 404
    assert patient.get(f"/join/{other.guest_token}/panel").status_code == 403  # not joined there
    token = csrf_token(clinician, f"/calls/{call.id}")
    clinician.post(f"/calls/{call.id}/end", data={"csrf_token": token})
    assert "The clinician has ended the call." in patient.get(
        f"/join/{call.guest_token}/panel"
    ).get_data(as_text=True)
    db.session.execute(
        update(Call).filter_by(id=call.id).values(ended_at=utcnow() - timedelta(minutes=16))
    )
    db.session.commit()
    gone = patient.get(f"/join/{call.guest_token}")
    assert gone.status_code == 404
    assert "This call link is not valid" in gone.get_data(as_text=True)


def test_only_the_clinics_clinicians_reach_the_call(app, clinician, gp):
    call = start_call(clinician, gp)
    admin = app.test_client()
    sign_in(admin, "clinicadmin@harbourside.example")
    assert admin.get(f"/calls/{call.id}").status_code == 403
    bayside = factories.organisation("Bayside Medical", "Bayside Clinic").clinics[0]
    factories.clinic_person("doc@bayside.example", bayside, ClinicRole.CLINICIAN)
    db.session.commit()
    stranger = app.test_client()
    sign_in(stranger, "doc@bayside.example", factories.PASSWORD)
    for path in ("", "/panel", "/events"):
        assert stranger.get(f"/calls/{call.id}{path}").status_code == 404, path
    token = csrf_token(stranger, "/calls/")
    refused = stranger.post(
        f"/calls/{call.id}/payment-requests",
        data={"csrf_token": token, "amount": "1", "description": "x"},
    )
    assert refused.status_code == 404
    assert requests_made() == []


# Request Payment: when it is offered, and what it accepts.


@pytest.mark.parametrize(
    "state, reason",
    [
        ("gateway_off", "Payments are not switched on for Harbourside GP Clinic"),
        ("not_linked", "has no Stripe account linked yet. A clinic admin can link it"),
        ("charges_off", "Stripe has not enabled card payments"),
    ],
)
def test_request_payment_says_why_it_is_unavailable_and_who_can_fix_it(
    app, clinician, gp, state, reason
):
    call = start_call(clinician, gp)
    if state == "gateway_off":
        db.session.execute(update(Clinic).filter_by(id=gp.id).values(gateway_enabled_at=None))
    elif state == "not_linked":
        db.session.execute(update(StripeLink).values(state="removed"))
    else:
        db.session.execute(update(StripeLink).values(charges_enabled=False))
    db.session.commit()
    page = clinician.get(f"/calls/{call.id}").get_data(as_text=True)
    assert reason in page
    assert 'id="request-payment-form"' not in page
    token = csrf_token(clinician, "/calls/")
    refused = clinician.post(
        f"/calls/{call.id}/payment-requests",
        data={
            "csrf_token": token,
            "request_key": "k" * 20,
            "amount": "85",
            "description": "Consult",
        },
    )
    assert refused.status_code == 400 and reason in refused.get_data(as_text=True)
    assert requests_made() == []


@pytest.mark.parametrize(
    "amount, description, message",
    [
        ("0", "Consultation", "The amount must be more than zero."),
        ("-5", "Consultation", "The amount must be more than zero."),
        ("0.49", "Consultation", "The smallest amount Stripe accepts is A$0.50."),
        ("1000000", "Consultation", "The largest amount Stripe accepts is A$999,999.99."),
        ("85.505", "Consultation", "at most two decimal places"),
        ("lots", "Consultation", "as a number in dollars and cents"),
        ("85", "", "Enter a description"),
        ("85", "x" * 121, "120 characters or fewer"),
        ("85", "Consultation\tand report", "without tabs or other control characters"),
        # Full-width digits: read as 85 by Python's \\d and Decimal, refused by vcpay.
        ("\uff18\uff15", "Consultation", "as a number in dollars and cents"),
    ],
)
def test_a_bad_amount_or_description_is_refused_and_nothing_is_requested(
    clinician, gp, stripe_control, amount, description, message
):
    call = start_call(clinician, gp)
    response = ask(clinician, call, amount, description)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert requests_made() == []
    assert stripe_control.sessions() == []


def test_request_payment_makes_one_checkout_session_on_the_clinics_account(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    join(app, call, "Pat Citizen")
    form = request_form(clinician, call)
    first = ask(clinician, call, "$1,250.00", "Consultation and report", form)
    second = ask(clinician, call, "$1,250.00", "Consultation and report", form)  # a double click
    assert first.status_code == second.status_code == 303
    request = the_request()
    assert (request.amount, request.currency, request.state) == (
        125000,
        "aud",
        PaymentState.REQUESTED,
    )
    assert request.patient_name == "Pat Citizen"
    [session] = stripe_control.sessions()
    assert session["id"] == request.checkout_session_id
    assert session["amount_total"] == 125000 and session["currency"] == "aud"
    assert session["metadata"]["payment_request"] == request.request_key
    # The page closes a minute after the request, inside Stripe's window (stripe_gateway).
    assert 30 * 60 <= session["expires_at"] - int(time.time()) <= 31 * 60 + 1
    assert kinds(call).count("payment_requested") == 1


def ask_for_json(browser, call, form, amount="85.00"):
    data = {**form, "amount": amount, "description": "Consultation"}
    return browser.post(
        f"/calls/{call.id}/payment-requests", data=data, headers={"Accept": "application/json"}
    )


def test_a_request_key_makes_one_request_in_its_own_call_and_no_other(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    join(app, call)
    form = request_form(clinician, call)
    assert ask_for_json(clinician, call, form).status_code == 201
    other = start_call(clinician, gp, "Someone else")
    reused = ask_for_json(clinician, other, {**request_form(clinician, other), **form})
    expired = (400, "The form expired; please try again.")
    assert (reused.status_code, reused.json["error"]) == expired
    malformed = ask_for_json(clinician, call, {**form, "request_key": "short"})
    assert (malformed.status_code, malformed.json["error"]) == expired
    [request] = requests_made()
    assert request.call_id == call.id
    assert len(stripe_control.sessions()) == 1


def test_after_the_call_ends_a_repeated_click_finds_its_request_and_nothing_new_is_asked(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    join(app, call)
    form = request_form(clinician, call)
    assert ask_for_json(clinician, call, form).status_code == 201
    clinician.post(f"/calls/{call.id}/end", data={"csrf_token": form["csrf_token"]})
    repeated = ask_for_json(clinician, call, form)  # the double click's second half, late
    assert (repeated.status_code, repeated.json) == (
        201,
        {"request": form["request_key"], "repeated": True},
    )
    fresh = ask_for_json(clinician, call, {**form, "request_key": "n" * 24})
    assert (fresh.status_code, fresh.json["error"]) == (400, "This call has ended.")
    assert len(requests_made()) == 1
    assert len(stripe_control.sessions()) == 1


# Who pays, when several people are in the call.


def participant_id(call, name: str) -> str:
    db.session.rollback()
    return str(
        next(p.id for p in db.session.get(Call, call.id).participants if p.display_name == name)
    )


def pay_link(call, request) -> str:
    return f"/join/{call.guest_token}/payments/{request.request_key}/pay"


def pay_now(patient, call, request, **headers):
    """Press Pay now on the patient's call screen: a POST with the screen's CSRF token."""
    page = patient.get(f"/join/{call.guest_token}").get_data(as_text=True)
    token = CSRF_FIELD.search(page)
    data = {"csrf_token": token.group(1)} if token else {}
    return patient.post(pay_link(call, request), data=data, headers=headers)


def test_with_one_patient_in_the_call_they_are_the_payer(app, clinician, gp):
    call = start_call(clinician, gp)
    join(app, call, "Pat Citizen")
    page = clinician.get(f"/calls/{call.id}").get_data(as_text=True)
    assert f'<option value="{participant_id(call, "Pat Citizen")}" selected>Pat Citizen' in page
    assert ask(clinician, call).status_code == 303
    request = the_request()
    assert request.payer.display_name == request.patient_name == "Pat Citizen"


def test_with_several_people_the_clinician_chooses_who_pays_and_only_they_see_pay_now(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    pat = join(app, call, "Pat Citizen")
    interpreter = join(app, call, "Ana (interpreter)")

    refused = ask(clinician, call)  # nobody chosen
    assert refused.status_code == 400
    assert "Choose who pays: more than one person is in the call." in refused.get_data(as_text=True)
    stranger = {**request_form(clinician, call), "payer": "999999"}
    refused = ask(clinician, call, form=stranger)
    assert refused.status_code == 400
    assert "Choose who pays from the people in this call." in refused.get_data(as_text=True)
    assert requests_made() == [] and stripe_control.sessions() == []

    chosen = {**request_form(clinician, call), "payer": participant_id(call, "Pat Citizen")}
    assert ask(clinician, call, form=chosen).status_code == 303
    request = the_request()
    assert request.patient_name == "Pat Citizen"
    assert "from Pat Citizen" in clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)

    link = pay_link(call, request)
    assert link in pat.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    theirs = interpreter.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    assert link not in theirs and "Requested from Pat Citizen." in theirs
    assert pay_now(pat, call, request).location == request.checkout_url
    not_theirs = interpreter.get(link)
    assert not_theirs.status_code == 403
    assert "Only they can pay it" in not_theirs.get_data(as_text=True)
    assert pay_now(interpreter, call, request).status_code == 403


def test_a_participant_who_types_the_payers_name_gets_no_pay_now(app, clinician, gp):
    call = start_call(clinician, gp)
    join(app, call, "Pat Citizen")
    chosen = {**request_form(clinician, call), "payer": participant_id(call, "Pat Citizen")}
    assert ask(clinician, call, form=chosen).status_code == 303
    request = the_request()
    impostor = join(app, call, "pat citizen")  # anyone in the call can type a name
    panel = impostor.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    assert pay_link(call, request) not in panel and "Requested from Pat Citizen." in panel
    shown = impostor.get(pay_link(call, request))
    assert shown.status_code == 403 and "Only they can pay it" in shown.get_data(as_text=True)
    assert 'class="pay-now"' not in shown.get_data(as_text=True)
    assert pay_now(impostor, call, request, **{"Accept-Language": "sr"}).status_code == 403
    assert the_request().patient_locale == ""


def recognise(browser, call, patient_id, person_id):
    token = csrf_token(browser, "/calls/")
    return browser.post(
        f"/calls/{call.id}/participants/{patient_id}/recognise",
        data={"csrf_token": token, "person": person_id},
    )


def recognitions_audited() -> list[AuditEntry]:
    db.session.rollback()
    return list(db.session.scalars(select(AuditEntry).filter_by(action="participant.recognised")))


def recognised_as(patient_id) -> int | None:
    db.session.rollback()
    return db.session.get(Participant, int(patient_id)).recognised_as_id


def test_the_clinician_recognises_the_patient_who_rejoined_who_may_then_pay(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    join(app, call, "Pat Citizen")
    interpreter = join(app, call, "Ana (interpreter)")
    pat = participant_id(call, "Pat Citizen")
    assert ask(clinician, call, form={**request_form(clinician, call), "payer": pat}).status_code
    request = the_request()
    phone = join(app, call, "Pat on phone")  # the same person, a new participant
    phone_id = participant_id(call, "Pat on phone")
    assert pay_now(phone, call, request).status_code == 403  # not until the clinician says so

    panel = clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)
    assert panel.count("This is Pat Citizen") == 1  # beside the phone; not the interpreter
    assert f"/participants/{phone_id}/recognise" in panel
    after = latest_event(call)
    response = recognise(clinician, call, phone_id, pat)
    assert response.status_code == 303
    assert recognised_as(phone_id) == int(pat)
    assert "Pat on phone is recognised as Pat Citizen" in clinician.get(response.location).get_data(
        as_text=True
    )
    assert kinds_after(call, after) == ["participant_recognised"]  # both screens refresh
    [entry] = recognitions_audited()
    assert (entry.object_id, entry.clinic_id) == (phone_id, gp.id)
    assert entry.details == {"recognised_as": int(pat)}
    panel = clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)
    assert "recognised as Pat Citizen" in panel and "This is Pat Citizen" not in panel

    assert pay_link(call, request) in phone.get(f"/join/{call.guest_token}/panel").get_data(
        as_text=True
    )
    assert pay_now(phone, call, request).location == request.checkout_url
    assert pay_now(interpreter, call, request).status_code == 403
    _, done = paid_with_the_page_asking_stripe(phone, call, request, stripe_control)
    assert done.status_code == 200 and "pat@example.org" in done.get_data(as_text=True)


def test_only_a_clinician_of_the_call_recognises_and_only_its_own_participants(app, clinician, gp):
    call = start_call(clinician, gp)
    other_call = start_call(clinician, gp, "Someone else")
    pat_browser = join(app, call, "Pat Citizen")
    join(app, call, "Ana (interpreter)")
    pat, ana = participant_id(call, "Pat Citizen"), participant_id(call, "Ana (interpreter)")
    assert ask(clinician, call, form={**request_form(clinician, call), "payer": pat}).status_code
    phone = join(app, call, "Pat on phone")
    phone_id = participant_id(call, "Pat on phone")
    join(app, other_call, "Elsewhere")
    elsewhere = participant_id(other_call, "Elsewhere")

    bayside = factories.organisation("Bayside Medical", "Bayside Clinic").clinics[0]
    factories.clinic_person("doc@bayside.example", bayside, ClinicRole.CLINICIAN)
    db.session.commit()
    stranger = app.test_client()
    sign_in(stranger, "doc@bayside.example", factories.PASSWORD)
    assert recognise(stranger, call, phone_id, pat).status_code == 404
    admin = app.test_client()
    sign_in(admin, "clinicadmin@harbourside.example")
    assert recognise(admin, call, phone_id, pat).status_code == 403
    token = csrf_token(pat_browser, f"/join/{call.guest_token}")
    guest = pat_browser.post(  # a patient cannot name anyone, themselves included
        f"/calls/{call.id}/participants/{phone_id}/recognise",
        data={"csrf_token": token, "person": pat},
    )
    assert guest.status_code == 302 and guest.location.startswith("/sign-in")
    assert recognise(clinician, call, elsewhere, pat).status_code == 404
    assert recognise(clinician, call, phone_id, elsewhere).status_code == 404
    assert recognise(clinician, other_call, phone_id, pat).status_code == 404
    refused = recognise(clinician, call, ana, pat)  # in the call before the request: not offered
    assert refused.status_code == 400
    assert "only a patient who joined after Pat Citizen was asked to pay" in refused.get_data(
        as_text=True
    ).replace("&#39;", "'")
    assert [recognised_as(p) for p in (phone_id, ana, elsewhere)] == [None, None, None]
    assert recognitions_audited() == []

    assert recognise(clinician, call, phone_id, pat).status_code == 303
    assert recognised_as(phone_id) == int(pat)
    assert pay_now(phone, call, the_request()).status_code == 303


def test_recognising_someone_others_were_recognised_as_keeps_one_person_and_no_chain(
    app, clinician, gp
):
    call = start_call(clinician, gp)
    join(app, call, "Pat Citizen")
    pat = participant_id(call, "Pat Citizen")
    ask(clinician, call, form={**request_form(clinician, call), "payer": pat})
    join(app, call, "Pat on phone")
    phone = participant_id(call, "Pat on phone")
    ask(clinician, call, form={**request_form(clinician, call), "payer": phone})
    tablet_browser = join(app, call, "Pat on tablet")
    tablet = participant_id(call, "Pat on tablet")
    assert recognise(clinician, call, tablet, phone).status_code == 303
    # Then the clinician sees the phone is Pat too: the tablet follows, straight to Pat.
    assert recognise(clinician, call, phone, pat).status_code == 303
    assert (recognised_as(phone), recognised_as(tablet)) == (int(pat), int(pat))
    first, second = requests_made()
    for request in (first, second):
        assert pay_now(tablet_browser, call, request).status_code == 303

    join(app, call, "Pat on laptop")  # both requests are Pat's now: one choice, not two
    panel = clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)
    assert panel.count("This is ") == 1


def test_anyone_in_the_call_may_be_asked_to_pay(app, clinician, gp):
    call = start_call(clinician, gp)
    pat = join(app, call, "Pat Citizen")
    carer = join(app, call, "Sam Citizen")
    assert (
        ask(clinician, call, form={**request_form(clinician, call), "payer": "anyone"}).status_code
        == 303
    )
    request = the_request()
    assert request.payer is None and request.patient_name == "Pat Citizen, Sam Citizen"
    for person in (pat, carer):
        assert pay_now(person, call, request).status_code == 303
    assert pay_now(app.test_client(), call, request).status_code == 403  # not in the call


def test_stripe_unreachable_requests_nothing(app, clinician, gp):
    call = start_call(clinician, gp)
    app.config.update(STRIPE_API_BASE="http://127.0.0.1:1", STRIPE_TIMEOUT_SECONDS=1.0)
    forget_clients()
    response = ask(clinician, call)
    assert response.status_code == 400
    assert "Stripe could not create the payment, so nothing was requested" in response.get_data(
        as_text=True
    )
    assert requests_made() == []


# Paying, and every way a payment can go.


def pay_and_process(control, request, card="4242424242424242", **details):
    outcome = control.pay(request.checkout_session_id, card, **details)
    return outcome


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
    assert "Payment received: A$85.00, Consultation, Pat Citizen" in panel
    # Dismissed, it is not shown again; until then every reload shows it.
    token = csrf_token(clinician, f"/calls/{call.id}")
    acknowledged = clinician.post(
        f"/calls/{call.id}/payment-requests/{request.request_key}/acknowledge",
        headers={"X-CSRFToken": token},
    )
    assert acknowledged.status_code == 200
    assert "Payment received:" not in clinician.get(f"/calls/{call.id}/panel").get_data(
        as_text=True
    )
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


RECEIPT_DETAILS = ("pat@example.org", "4242", "Receipt number")


def paid_with_the_page_asking_stripe(patient, call, request, control):
    control.pay(request.checkout_session_id, "4242424242424242")
    done = f"{pay_link(call, request)[:-4]}/done?session_id={request.checkout_session_id}"
    return done, patient.get(done)


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


def receipt_path(email: OutboundEmail) -> str:
    match = re.search(r"http://127\.0\.0\.1:5000(/\S+)", email.body_text)
    assert match, email.body_text
    return match.group(1)


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


def test_a_declined_card_leaves_the_request_open_and_both_sides_see_it(
    app, clinician, gp, webhooks
):
    call = start_call(clinician, gp)
    patient = join(app, call)
    ask(clinician, call)
    request = the_request()
    outcome = pay_and_process(webhooks, request, "4000000000000002")
    assert outcome["outcome"] != "succeeded"
    wait_for_events("payment_intent.payment_failed")
    process_received()
    request = the_request()
    assert request.state == PaymentState.REQUESTED
    assert "declined" in request.last_decline
    assert "Card declined, patient can retry" in clinician.get(f"/calls/{call.id}/panel").get_data(
        as_text=True
    )
    patient_panel = patient.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    assert "Your card was not accepted" in patient_panel and "Pay now" in patient_panel
    pay_and_process(webhooks, request)  # another card
    wait_for_events("checkout.session.completed")
    process_received()
    assert the_request().state == PaymentState.PAID


def test_a_late_decline_after_the_payment_changes_nothing(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    ask(clinician, call)
    request = the_request()
    webhooks.webhook_fault("hold", count=20)
    pay_and_process(webhooks, request, "4000000000009995")
    pay_and_process(webhooks, request)
    webhooks.release_held("reverse")  # completion first, the older decline last
    wait_for_events("payment_intent.payment_failed")
    wait_for_events("checkout.session.completed")
    process_received()
    request = the_request()
    assert (request.state, request.last_decline) == (PaymentState.PAID, "")


def test_the_clinician_cancels_a_pending_request(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    patient = join(app, call)
    ask(clinician, call)
    request = the_request()
    token = csrf_token(clinician, f"/calls/{call.id}")
    clinician.post(
        f"/calls/{call.id}/payment-requests/{request.request_key}/cancel",
        data={"csrf_token": token},
    )
    assert the_request().state == PaymentState.CANCELLED
    [session] = webhooks.sessions()
    assert session["status"] == "expired"  # nobody can pay it any more
    assert "Cancelled by the clinic" in patient.get(f"/join/{call.guest_token}/panel").get_data(
        as_text=True
    )
    wait_for_events("checkout.session.expired")
    process_received()
    assert the_request().state == PaymentState.CANCELLED  # not "expired"
    assert patient.get(pay_link(call, request)).status_code == 200
    assert pay_now(patient, call, request).status_code == 200  # nothing to pay: no Checkout


def test_cancelling_what_the_patient_just_paid_leaves_it_paid(app, clinician, gp, stripe_control):
    call = start_call(clinician, gp)
    ask(clinician, call)
    request = the_request()
    pay_and_process(stripe_control, request)  # its webhook has not arrived yet
    token = csrf_token(clinician, f"/calls/{call.id}")
    response = clinician.post(
        f"/calls/{call.id}/payment-requests/{request.request_key}/cancel",
        data={"csrf_token": token},
    )
    assert "the patient has already paid" in clinician.get(response.location).get_data(as_text=True)
    assert the_request().state == PaymentState.PAID


def test_cancelling_from_a_stale_screen_says_what_became_of_the_request(
    app, clinician, gp, webhooks
):
    call = start_call(clinician, gp)
    ask(clinician, call)
    request = the_request()
    webhooks.expire_now(request.checkout_session_id)
    wait_for_events("checkout.session.expired")
    process_received()
    token = csrf_token(clinician, f"/calls/{call.id}")
    response = clinician.post(
        f"/calls/{call.id}/payment-requests/{request.request_key}/cancel",
        data={"csrf_token": token},
    )
    page = clinician.get(response.location).get_data(as_text=True)
    notices = re.findall(r'<div class="notice [^"]*"[^>]*>([^<]*)</div>', page)
    assert notices == ["Nothing to cancel: the request is no longer open."]
    assert the_request().state == PaymentState.EXPIRED


def test_an_unpaid_request_expires(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    patient = join(app, call)
    ask(clinician, call)
    webhooks.expire_now(the_request().checkout_session_id)
    wait_for_events("checkout.session.expired")
    process_received()
    assert the_request().state == PaymentState.EXPIRED
    assert "Expired" in patient.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    assert "Expired, not paid" in clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)


def test_a_delayed_payment_method_settles_later_or_fails(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    for outcome, final in (("succeeded", PaymentState.PAID), ("failed", PaymentState.FAILED)):
        ask(clinician, call)
        request = requests_made()[-1]
        webhooks.pay(request.checkout_session_id, delayed=True)
        webhooks.wait_for_webhooks()
        process_received()
        assert requests_made()[-1].state == PaymentState.PROCESSING
        webhooks.settle(request.checkout_session_id, outcome)
        webhooks.wait_for_webhooks()
        process_received()
        assert requests_made()[-1].state == final


def test_refunds_from_stripe_are_recorded(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    ask(clinician, call, "100.00")
    request = the_request()
    pay_and_process(webhooks, request)
    webhooks.wait_for_webhooks()
    process_received()
    platform = stripe.StripeClient(
        app.config["STRIPE_SECRET_KEY"],
        base_addresses={"api": webhooks.base, "connect": webhooks.base},
    )
    options = {"stripe_account": request.stripe_account_id}
    platform.v1.refunds.create(
        {"payment_intent": the_request().payment_intent_id, "amount": 2500}, options
    )
    webhooks.wait_for_webhooks()
    process_received()
    assert (the_request().state, the_request().amount_refunded) == (
        PaymentState.PARTIALLY_REFUNDED,
        2500,
    )
    platform.v1.refunds.create({"payment_intent": the_request().payment_intent_id}, options)
    webhooks.wait_for_webhooks()
    process_received()
    assert (the_request().state, the_request().amount_refunded) == (PaymentState.REFUNDED, 10000)


def test_refund_events_arriving_out_of_order_leave_the_latest_refund(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    ask(clinician, call, "100.00")
    request = the_request()
    pay_and_process(webhooks, request)
    webhooks.wait_for_webhooks()
    process_received()
    platform = stripe.StripeClient(
        app.config["STRIPE_SECRET_KEY"],
        base_addresses={"api": webhooks.base, "connect": webhooks.base},
    )
    options = {"stripe_account": request.stripe_account_id}
    intent = the_request().payment_intent_id
    webhooks.webhook_fault("hold", count=20)
    platform.v1.refunds.create({"payment_intent": intent, "amount": 2500}, options)
    platform.v1.refunds.create({"payment_intent": intent, "amount": 5000}, options)
    webhooks.release_held("reverse")  # the second refund's event first, the first's last
    arrived = wait_for_events("charge.refunded", 2)
    refunded_so_far = [json.loads(e.payload)["data"]["object"]["amount_refunded"] for e in arrived]
    assert refunded_so_far == [7500, 2500]
    process_received()
    assert (the_request().state, the_request().amount_refunded) == (
        PaymentState.PARTIALLY_REFUNDED,
        7500,
    )
    assert kinds(call).count("payment_refunded") == 1  # the older event changed nothing
    assert [e.state for e in received("charge.refunded")] == [EventState.PROCESSED] * 2


def test_the_reconciler_finds_a_payment_whose_webhook_never_came(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    ask(clinician, call)
    request = the_request()
    pay_and_process(stripe_control, request)
    gateway = StripeGateway.from_config(app.config)
    thresholds = reconcile_thresholds(app.config)
    assert services.reconcile(gateway, **thresholds) == 0  # too recent to ask about yet
    db.session.execute(update(PaymentRequest).values(created_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()
    assert services.reconcile(gateway, **thresholds) == 1
    assert the_request().state == PaymentState.PAID
    assert services.reconcile(gateway, **thresholds) == 0


def test_removing_the_stripe_link_cancels_open_requests(app, clinician, gp, stripe_control):
    call = start_call(clinician, gp)
    ask(clinician, call)
    link = db.session.scalar(select(StripeLink))
    admin = db.session.scalar(select(User).filter_by(email="clinicadmin@harbourside.example"))
    remove_link(link, admin, StripeGateway.from_config(app.config))
    db.session.commit()
    assert the_request().state == PaymentState.CANCELLED
    assert stripe_control.sessions()[0]["status"] == "expired"


# Live updates.


def read_stream(browser, path, **headers) -> list[dict]:
    import json

    body = browser.get(path, headers=headers).get_data(as_text=True)
    events = []
    for block in body.split("\n\n"):
        lines = dict(
            line.split(": ", 1)
            for line in block.splitlines()
            if ": " in line and not line.startswith(":")
        )
        if "data" in lines and "id" in lines:
            events.append({"id": int(lines["id"]), **json.loads(lines["data"])})
    return events


def test_the_event_stream_resumes_after_the_last_event_id_and_keeps_staff_events_from_the_patient(
    app, clinician, gp, webhooks
):
    app.config["STREAM_MAX_SECONDS"] = 1
    call = start_call(clinician, gp)
    patient = join(app, call)
    ask(clinician, call, "100.00")
    request = the_request()
    pay_and_process(webhooks, request)
    webhooks.wait_for_webhooks()
    process_received()
    platform = stripe.StripeClient(
        app.config["STRIPE_SECRET_KEY"],
        base_addresses={"api": webhooks.base, "connect": webhooks.base},
    )
    platform.v1.refunds.create(
        {"payment_intent": the_request().payment_intent_id},
        {"stripe_account": request.stripe_account_id},
    )
    webhooks.wait_for_webhooks()
    process_received()

    staff = read_stream(clinician, f"/calls/{call.id}/events?after=0")
    assert [e["kind"] for e in staff] == [
        "call_started",
        "participant_joined",
        "payment_requested",
        "payment_paid",
        "payment_refunded",
    ]
    assert staff[3]["amount"] == "A$100.00" and staff[3]["patient"] == "Pat Citizen"
    resumed = read_stream(
        clinician, f"/calls/{call.id}/events?after=0", **{"Last-Event-ID": str(staff[2]["id"])}
    )
    assert [e["kind"] for e in resumed] == ["payment_paid", "payment_refunded"]
    seen_by_patient = read_stream(patient, f"/join/{call.guest_token}/events")
    assert "payment_refunded" not in [e["kind"] for e in seen_by_patient]
    assert "payment_paid" in [e["kind"] for e in seen_by_patient]
    assert (
        clinician.get(f"/calls/{call.id}/events", headers={"Last-Event-ID": "x"}).status_code == 400
    )


def test_streams_close_when_their_viewers_lose_access_to_the_call(app, clinician, gp, monkeypatch):
    monkeypatch.setattr(call_stream, "RECHECK_SECONDS", 0.2)
    monkeypatch.setattr(call_stream, "KEEPALIVE_SECONDS", 0.2)
    app.config.update(STREAM_POLL_SECONDS=0.05, STREAM_MAX_SECONDS=30)
    call = start_call(clinician, gp)
    patient = join(app, call)
    staff = iter(clinician.get(f"/calls/{call.id}/events").response)
    guest = iter(patient.get(f"/join/{call.guest_token}/events").response)
    assert next(staff).startswith(b"retry:") and next(guest).startswith(b"retry:")
    # The call ends, and its link's grace runs out; the clinician leaves the clinic.
    clinician.post(f"/calls/{call.id}/end", data={"csrf_token": csrf_token(clinician, "/calls/")})
    doctor = db.session.scalar(select(User).filter_by(email=CLINICIAN))
    db.session.execute(delete(ClinicMembership).filter_by(user_id=doctor.id))
    grace = timedelta(minutes=app.config["GUEST_LINK_GRACE_MINUTES"] + 1)
    db.session.execute(update(Call).filter_by(id=call.id).values(ended_at=utcnow() - grace))
    db.session.commit()
    for stream in (staff, guest):
        assert b"".join(stream).decode().endswith("event: closed\ndata: {}\n\n")


def test_the_reconciler_finds_a_delayed_payment_that_failed(app, clinician, gp, stripe_control):
    call = start_call(clinician, gp)
    ask(clinician, call)
    request = the_request()
    stripe_control.pay(request.checkout_session_id, delayed=True)  # no webhook endpoint
    stripe_control.settle(request.checkout_session_id, "failed")
    db.session.execute(update(PaymentRequest).values(created_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()
    assert (
        services.reconcile(
            StripeGateway.from_config(app.config), **reconcile_thresholds(app.config)
        )
        == 1
    )
    assert the_request().state == PaymentState.FAILED
