"""Request Payment in a call: the call and its guest link, who may ask, what is asked, who pays
(and who is recognised as them), on the Stripe stand-in.

The real ``stripe`` library talks HTTP to the stand-in, whose webhooks reach vcpay over HTTP;
stored events are processed as a worker would.
"""

import re
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests import factories
from tests.conftest import csrf_token, sign_in
from tests.payment_steps import (
    ask,
    ask_for_json,
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    join,
    kinds,
    kinds_after,
    latest_event,
    paid_with_the_page_asking_stripe,
    participant_id,
    pay_link,
    pay_now,
    recognise,
    recognised_as,
    recognitions_audited,
    request_form,
    requests_made,
    sent_back,
    start_call,
    the_request,
)
from vcpay.calls.models import Call, Participant
from vcpay.client_payments.models import StripeLink
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import forget_clients
from vcpay.payments import payers
from vcpay.payments.models import PaymentRequest, PaymentState
from vcpay.people.models import Clinic, ClinicRole


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
    assert reason in sent_back(clinician, call, refused)
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
    assert message in sent_back(clinician, call, response)
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
    # The page closes a minute after the request, inside Stripe's window (stripe_api).
    assert 30 * 60 <= session["expires_at"] - int(time.time()) <= 31 * 60 + 1
    assert kinds(call).count("payment_requested") == 1


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
    page = sent_back(clinician, call, refused)
    assert "Choose who pays: more than one person is in the call." in page
    stranger = {**request_form(clinician, call), "payer": "999999"}
    refused = ask(clinician, call, form=stranger)
    assert "Choose who pays from the people in this call." in sent_back(clinician, call, refused)
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
    assert refused.status_code == 303 and refused.location == f"/calls/{call.id}"
    assert "only a patient who joined after Pat Citizen was asked to pay" in clinician.get(
        refused.location
    ).get_data(as_text=True).replace("&#39;", "'")
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
    # The same fee again, for the phone: the clinician confirms a second request.
    open_request = requests_made()[0].request_key
    again = {**request_form(clinician, call), "payer": phone, "confirm_repeat": open_request}
    assert ask(clinician, call, form=again).status_code == 303
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
        assert pay_link(call, request) in person.get(f"/join/{call.guest_token}/panel").get_data(
            as_text=True
        )
    assert pay_now(app.test_client(), call, request).status_code == 403  # not in the call
    # The first to press Pay now is the payer: the receipt will be theirs alone.
    assert pay_now(carer, call, request).status_code == 303
    assert pay_now(carer, call, request).status_code == 303  # again, from the same browser
    assert pay_now(pat, call, request).status_code == 403
    assert (the_request().payer_id, the_request().patient_name) == (
        int(participant_id(call, "Sam Citizen")),
        "Sam Citizen",
    )


def test_of_two_taking_on_a_request_at_once_the_first_is_its_payer(app, clinician, gp):
    call = start_call(clinician, gp)
    join(app, call, "Pat Citizen")
    join(app, call, "Sam Citizen")
    ask(clinician, call, form={**request_form(clinician, call), "payer": "anyone"})
    pat, sam = (
        db.session.get(Participant, int(participant_id(call, name)))
        for name in ("Pat Citizen", "Sam Citizen")
    )
    request = the_request()  # as Sam's press read it, before Pat's press bound it
    db.session.execute(
        update(PaymentRequest).filter_by(id=request.id).values(payer_id=pat.id),
        execution_options={"synchronize_session": False},
    )
    assert request.payer_id is None
    assert payers.take_on(request, sam) is False
    assert request.payer_id == pat.id
    assert payers.take_on(request, pat) is True


def test_stripe_unreachable_requests_nothing(app, clinician, gp):
    call = start_call(clinician, gp)
    app.config.update(STRIPE_API_BASE="http://127.0.0.1:1", STRIPE_TIMEOUT_SECONDS=1.0)
    forget_clients()
    response = ask(clinician, call)
    page = sent_back(clinician, call, response)
    assert "Stripe could not create the payment, so nothing was requested" in page
    assert requests_made() == []


@pytest.mark.parametrize(
    ("browser", "checkout"),
    # Checkout speaks no Serbian: Croatian is the closest it has (vcpay.i18n).
    [("sr-RS,sr;q=0.9,en;q=0.5", "hr"), ("sr-Latn-RS", "hr"), ("en-AU,en;q=0.9", "en-GB")],
)
def test_stripe_checkout_is_asked_for_the_patients_language(
    app, clinician, gp, stripe_control, browser, checkout
):
    call = start_call(clinician, gp)
    patient = app.test_client()
    patient.environ_base["HTTP_ACCEPT_LANGUAGE"] = browser
    token = csrf_token(patient, f"/join/{call.guest_token}")
    joined = patient.post(
        f"/join/{call.guest_token}", data={"csrf_token": token, "display_name": "Pat Citizen"}
    )
    assert joined.status_code == 303
    assert ask(clinician, call).status_code == 303
    [session] = stripe_control.sessions()
    assert session["locale"] == checkout


def test_with_patients_in_different_languages_checkout_follows_each_browser(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    join(app, call, "Pat Citizen")
    serbian = app.test_client()
    serbian.environ_base["HTTP_ACCEPT_LANGUAGE"] = "sr"
    token = csrf_token(serbian, f"/join/{call.guest_token}")
    serbian.post(f"/join/{call.guest_token}", data={"csrf_token": token, "display_name": "Ana"})
    anyone = {**request_form(clinician, call), "payer": "anyone"}
    assert ask(clinician, call, form=anyone).status_code == 303
    [session] = stripe_control.sessions()
    assert session["locale"] == "auto"


def test_a_refused_request_leaves_the_address_on_the_call_screen_and_says_why_once(
    clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    refused = ask(clinician, call, "lots", "Consultation 27 Nov")
    page = sent_back(clinician, call, refused)  # a GET of the screen: a reload sends nothing
    assert "as a number in dollars and cents" in page
    assert 'value="lots"' in page and 'value="Consultation 27 Nov"' in page  # as sent
    assert 'id="tools-panel" hidden' not in page  # Apps & Tools open at the form
    assert 'aria-describedby="payment-error" aria-invalid="true"' in page
    again = clinician.get(f"/calls/{call.id}").get_data(as_text=True)
    assert "as a number in dollars and cents" not in again
    opened = clinician.get(f"/calls/{call.id}/payment-requests")  # the form's own address
    assert opened.status_code == 303 and opened.location == f"/calls/{call.id}#request-payment"
    assert requests_made() == [] and stripe_control.sessions() == []


def test_the_payment_table_shows_when_each_request_was_made(app, clinician, gp, stripe_control):
    from vcpay.clinic_clocks import clinic_clock, clinic_iso

    call = start_call(clinician, gp)
    join(app, call)
    assert ask(clinician, call).status_code == 303
    request = the_request()
    panel = clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)
    with app.test_request_context():
        shown = clinic_clock(request.created_at, gp)
    assert re.search(r"\d:\d\d", shown)  # the time of day, its zone named
    assert f'<time datetime="{clinic_iso(request.created_at, gp)}">{shown}</time>' in panel
    assert '<th scope="col">Requested</th>' in panel
