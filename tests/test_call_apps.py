"""Apps & Tools: the call screens host whatever apps the application adds, knowing none.

A tiny Bulk Billing Consent stands in for the next app: added to a test application, with
templates of its own, it appears on the clinician's screen and the patient's page without a
line of ``vcpay/calls`` knowing it.
"""

import pytest
from flask import Blueprint
from sqlalchemy import select

from tests.conftest import csrf_token, sign_in
from vcpay.calls.apps import (
    CallApp,
    CallApps,
    CallNotPrepared,
    Panel,
    StartFields,
    add_call_app,
    call_apps,
)
from vcpay.calls.models import Call, Participant
from vcpay.extensions import db
from vcpay.people.models import User

CLINICIAN = "clinician@harbourside.example"
TEMPLATES = {
    "tool.html": '<form id="consent-form">Send {{ form_name }} ({{ state.get("note", "new") }})'
    "</form>",
    "staff.html": '<section id="consent-status">{{ signed }} of {{ asked }} signed in '
    "{{ call.title }}</section>",
    "beside.html": '<span class="consent-beside">{{ participant.display_name }}: '
    "{{ signed }}</span>",
    "patient.html": '<section id="consent-for-patient">Please sign, {{ me }}</section>',
    "staff_only.html": '<p id="staff-only">{{ hello }}</p>',
}


def consent_app(available=None) -> CallApp:
    return CallApp(
        key="bulk-billing-consent",
        name="Bulk Billing Consent",
        tool=Panel(
            "consent/tool.html",
            lambda call, user, state: {"form_name": f"consent for {user.name}", "state": state},
        ),
        staff_panel=Panel("consent/staff.html", lambda call, user: {"signed": 0, "asked": 1}),
        patient_panel=Panel(
            "consent/patient.html", lambda call, patient: {"me": patient.display_name}
        ),
        beside_participant="consent/beside.html",
        **({"available": available} if available else {}),
    )


@pytest.fixture
def consent(app, demo, tmp_path):
    """The app's templates, in a blueprint of its own as a feature package would have them."""
    folder = tmp_path / "templates" / "consent"
    folder.mkdir(parents=True)
    for name, text in TEMPLATES.items():
        (folder / name).write_text(text)
    app.register_blueprint(Blueprint("consent", __name__, template_folder=tmp_path / "templates"))
    add_call_app(app, consent_app())
    return app


def start_call(browser) -> Call:
    token = csrf_token(browser, "/calls/")
    [membership] = db.session.scalar(select(User).filter_by(email=CLINICIAN)).clinic_memberships
    clinic_id = membership.clinic_id
    response = browser.post(
        "/calls/start", data={"csrf_token": token, "clinic_id": clinic_id, "title": "Pat, 10:30"}
    )
    assert response.status_code == 303
    return db.session.get(Call, int(response.location.rsplit("/", 1)[1]))


def join(app, call, name="Pat Citizen"):
    patient = app.test_client()
    token = csrf_token(patient, f"/join/{call.guest_token}")
    joined = patient.post(
        f"/join/{call.guest_token}", data={"csrf_token": token, "display_name": name}
    )
    assert joined.status_code == 303
    return patient


def test_an_app_added_to_the_application_shows_on_both_sides_of_the_call(consent):
    clinician = consent.test_client()
    sign_in(clinician, CLINICIAN)
    call = start_call(clinician)
    patient = join(consent, call)

    screen = clinician.get(f"/calls/{call.id}").get_data(as_text=True)
    assert '<section id="bulk-billing-consent" aria-labelledby="bulk-billing-consent-heading">' in (
        screen
    )
    assert '<h3 id="bulk-billing-consent-heading">Bulk Billing Consent</h3>' in screen
    assert '<form id="consent-form">Send consent for Dr Jordan Rivers (new)</form>' in screen
    assert "0 of 1 signed in Pat, 10:30" in screen
    assert '<span class="consent-beside">Pat Citizen: 0</span>' in screen
    # Request Payment, added by the factory, is still there, and comes first.
    assert screen.index('id="request-payment"') < screen.index('id="bulk-billing-consent"')

    panel = clinician.get(f"/calls/{call.id}/panel").get_data(as_text=True)
    assert "0 of 1 signed in Pat, 10:30" in panel
    assert '<span class="consent-beside">Pat Citizen: 0</span>' in panel
    assert "consent-form" not in panel  # the tools are not part of the live panel

    page = patient.get(f"/join/{call.guest_token}").get_data(as_text=True)
    assert '<section id="consent-for-patient">Please sign, Pat Citizen</section>' in page
    assert "consent-status" not in page and "consent-form" not in page
    assert "Please sign, Pat Citizen" in patient.get(f"/join/{call.guest_token}/panel").get_data(
        as_text=True
    )


def test_an_app_is_shown_only_where_it_says_it_is_available(consent):
    seen: list[tuple[int, str]] = []

    def only_for_staff(call, person) -> bool:
        seen.append((call.id, type(person).__name__))
        return isinstance(person, User)

    call_apps(consent).add(
        CallApp(
            key="staff-only",
            name="Staff only",
            staff_panel=Panel("consent/staff_only.html", lambda call, user: {"hello": "Hi"}),
            patient_panel=Panel("consent/staff_only.html", lambda call, p: {"hello": "Hi"}),
            available=only_for_staff,
        )
    )
    clinician = consent.test_client()
    sign_in(clinician, CLINICIAN)
    call = start_call(clinician)
    patient = join(consent, call)
    assert '<p id="staff-only">Hi</p>' in clinician.get(f"/calls/{call.id}/panel").get_data(
        as_text=True
    )
    assert "staff-only" not in patient.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    assert (call.id, User.__name__) in seen and (call.id, Participant.__name__) in seen


def test_one_key_is_one_app():
    apps = CallApps()
    apps.add(consent_app())
    with pytest.raises(ValueError, match=r"^bulk-billing-consent is already in Apps & Tools$"):
        apps.add(consent_app())


def test_the_factory_adds_request_payment_to_each_application_it_makes(app):
    assert [a.key for a in call_apps(app)] == [
        "request-payment",
        "fee-before-joining",
        "saved-cards",
    ]


def test_an_app_adds_fields_to_the_start_form_and_sends_a_patient_somewhere_first(
    app, demo, tmp_path
):
    folder = tmp_path / "templates" / "consent"
    folder.mkdir(parents=True)
    (folder / "start.html").write_text(
        '<input name="consent_note" data-for="{{ clinic.name }}" value="{{ sent.consent_note }}">'
        '{{ refused.get("message", "") }}'
    )
    app.register_blueprint(Blueprint("consent", __name__, template_folder=tmp_path / "templates"))
    prepared, signed = [], set()

    def prepare(call, user, sent):
        if sent.get("consent_note") == "refuse":
            raise CallNotPrepared("No consent form today.")
        prepared.append((call.title, user.email, sent.get("consent_note")))

    add_call_app(
        app,
        CallApp(
            key="consent-first",
            name="Consent first",
            start_fields=StartFields(
                "consent/start.html", lambda clinic, user: {}, prepare, fields=("consent_note",)
            ),
            patient_gate=lambda call, patient: None if patient.id in signed else "/consent-first",
        ),
    )
    clinician = app.test_client()
    sign_in(clinician, CLINICIAN)
    page = clinician.get("/calls/").get_data(as_text=True)
    assert '<input name="consent_note" data-for="Harbourside GP Clinic" value="">' in page

    [membership] = db.session.scalar(select(User).filter_by(email=CLINICIAN)).clinic_memberships
    token = csrf_token(clinician, "/calls/")
    form = {"csrf_token": token, "clinic_id": membership.clinic_id, "title": "Pat, 10:30"}
    refused = clinician.post("/calls/start", data={**form, "consent_note": "refuse"})
    assert refused.location == "/calls/"
    page = clinician.get("/calls/").get_data(as_text=True)
    assert 'value="refuse">No consent form today.' in page  # as sent, and why
    assert 'value="Pat, 10:30"' in page
    assert "No consent form today." not in clinician.get("/calls/").get_data(as_text=True)
    assert db.session.scalars(select(Call)).all() == [] and prepared == []

    call = start_call(clinician)
    assert prepared == [("Pat, 10:30", CLINICIAN, None)]
    patient = join(app, call)
    assert patient.get(f"/join/{call.guest_token}").location == "/consent-first"
    assert patient.get(f"/join/{call.guest_token}/panel").status_code == 403
    signed.add(db.session.scalars(select(Participant).filter_by(role="patient")).one().id)
    assert patient.get(f"/join/{call.guest_token}").status_code == 200
    assert patient.get(f"/join/{call.guest_token}/panel").status_code == 200
