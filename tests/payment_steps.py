"""Steps shared by the payment tests: a clinic linked to the Stripe stand-in, its clinician,
a call, a request, a payment, and what the call's events and stream say.

A test module that wants the ``gp`` and ``clinician`` fixtures imports ``gp_fixture`` and
``clinician_fixture``: pytest finds them by their names.
"""

import json
import re

import pytest
import stripe
from sqlalchemy import select

from tests.conftest import CSRF_FIELD, csrf_token, sign_in
from tests.stripe_standin import link_clinic, process_received
from vcpay.audit.models import AuditEntry
from vcpay.calls.models import Call, CallEvent, Participant
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail
from vcpay.payments.models import PaymentRequest
from vcpay.people.demo import seed_demo

CLINICIAN = "clinician@harbourside.example"


@pytest.fixture(name="gp")
def gp_fixture(app, stripe_control):
    """The GP clinic: gateway on, its Stripe account linked with charges enabled."""
    organisation = seed_demo(enable_gateway=True)
    clinic = next(c for c in organisation.clinics if c.name == "Harbourside GP Clinic")
    link_clinic(stripe_control, clinic)
    db.session.commit()
    return clinic


@pytest.fixture(name="clinician")
def clinician_fixture(app, gp):
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


def sent_back(browser, call, response) -> str:
    """A refused request goes back to the call screen (POST, redirect, GET); the screen's
    text, which says why and shows the form as sent."""
    assert response.status_code == 303
    assert response.location == f"/calls/{call.id}#request-payment"
    return browser.get(response.location).get_data(as_text=True)


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


def ask_for_json(browser, call, form, amount="85.00"):
    data = {**form, "amount": amount, "description": "Consultation"}
    return browser.post(
        f"/calls/{call.id}/payment-requests", data=data, headers={"Accept": "application/json"}
    )


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


def pay_and_process(control, request, card="4242424242424242", **details):
    outcome = control.pay(request.checkout_session_id, card, **details)
    return outcome


def paid_in_a_new_call(clinician, gp, webhooks, amount="100.00") -> PaymentRequest:
    """A call with a request paid and its events applied: the start of every refund story."""
    ask(clinician, start_call(clinician, gp), amount)
    request = the_request()
    pay_and_process(webhooks, request)
    webhooks.wait_for_webhooks()
    process_received()
    return request


def stripe_platform(app, webhooks) -> stripe.StripeClient:
    """The platform's own Stripe client, as the clinic's Stripe dashboard acts (refunds)."""
    return stripe.StripeClient(
        app.config["STRIPE_SECRET_KEY"],
        base_addresses={"api": webhooks.base, "connect": webhooks.base},
    )


RECEIPT_DETAILS = ("pat@example.org", "4242", "Receipt number")


def paid_with_the_page_asking_stripe(patient, call, request, control):
    control.pay(request.checkout_session_id, "4242424242424242")
    done = f"{pay_link(call, request)[:-4]}/done?session_id={request.checkout_session_id}"
    return done, patient.get(done)


def receipt_path(email: OutboundEmail) -> str:
    match = re.search(r"http://127\.0\.0\.1:5000(/\S+)", email.body_text)
    assert match, email.body_text
    return match.group(1)


def read_stream(browser, path, **headers) -> list[dict]:

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
