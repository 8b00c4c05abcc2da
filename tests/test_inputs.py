"""Bad input gets a 4xx and a reason, never a 500, and writes nothing: control characters,
ids beyond the database's integers, other scripts' digits, hostile webhook envelopes."""

import hashlib
import hmac
import json
import logging

import pytest
from sqlalchemy import func, select, text

from tests.conftest import csrf_token, sign_in
from tests.payment_steps import (  # noqa: F401 - the fixtures
    clinician_fixture,
    gp_fixture,
    join,
    request_form,
    start_call,
)
from tests.stripe_events import event, post_event, signed_text
from tests.test_enablement_requests import MANAGER, new_path, request_data, requests_count
from vcpay.auth.sessions import load_signed_in_user
from vcpay.calls.models import Call, Participant
from vcpay.enablement import polling
from vcpay.enablement.models import EnablementRequest
from vcpay.extensions import db
from vcpay.payments.models import PaymentRequest
from vcpay.webhooks import inbox
from vcpay.webhooks.models import StripeEvent

CONTROL_MESSAGE = "contains a control character"
ONE_LINE_MESSAGE = "Write this on one line, without tabs or other control characters."


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


# Control characters, refused before any view runs.


@pytest.mark.parametrize("path", ["/join/abc%00def", "/join/abc%01def/panel", "/calls/%00"])
def test_a_control_character_in_the_path_is_refused_with_a_message(client, demo, path):
    response = client.get(path)
    assert response.status_code == 400
    assert CONTROL_MESSAGE in response.get_data(as_text=True)


def test_an_api_client_is_refused_in_json(client):
    response = client.post("/webhooks/stripe?x=%00", data=b"{}")
    assert response.status_code == 400
    assert CONTROL_MESSAGE in response.json["error"]["message"]


@pytest.mark.parametrize("query", ["?tab=%09", "?x=a%00b", "?%1b=1"])
def test_a_control_character_in_the_query_is_refused(clinician, query):
    response = clinician.get(f"/calls/{query}")
    assert response.status_code == 400
    assert CONTROL_MESSAGE in response.get_data(as_text=True)


def test_a_nul_in_a_form_field_is_refused_and_nothing_is_written(clinician, gp):
    token = csrf_token(clinician, "/calls/")
    response = clinician.post(
        "/calls/start", data={"csrf_token": token, "clinic_id": gp.id, "title": "Pat\x00"}
    )
    assert response.status_code == 400
    assert CONTROL_MESSAGE in response.get_data(as_text=True)
    assert count(Call) == 0


def test_a_nul_in_request_payment_creates_nothing_at_stripe(
    app,
    clinician,
    gp,
    stripe_control,
):
    call = start_call(clinician, gp)
    join(app, call)
    data = {**request_form(clinician, call), "amount": "85", "description": "Consult\x00ation"}
    response = clinician.post(
        f"/calls/{call.id}/payment-requests", data=data, headers={"Accept": "application/json"}
    )
    assert response.status_code == 400
    assert stripe_control.sessions() == []
    assert count(PaymentRequest) == 0


def test_tabs_and_line_breaks_are_kept_in_a_multi_line_field(client, demo):
    sign_in(client, MANAGER)
    notes = "First line\r\nSecond line\tindented"
    data = request_data(client, new_path(demo), send=False, notes=notes)
    assert client.post(new_path(demo), data=data).status_code == 302
    assert db.session.scalar(select(EnablementRequest.notes)) == notes


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 85, "description": "Consultation"},  # a number where the form has text
        {"amount": "85", "description": ["Consultation"]},
        "85",
        [["amount", "85"]],
        {"amount": "85", "description": "Consult\u0000ation"},
    ],
)
def test_a_json_form_must_be_names_with_text_values(
    app,
    clinician,
    gp,
    stripe_control,
    body,
):
    call = start_call(clinician, gp)
    join(app, call)
    form = request_form(clinician, call)
    if isinstance(body, dict):
        body = {**body, "request_key": form["request_key"]}
    response = clinician.post(
        f"/calls/{call.id}/payment-requests",
        json=body,
        headers={"X-CSRFToken": form["csrf_token"], "Accept": "application/json"},
    )
    assert response.status_code == 400
    assert stripe_control.sessions() == []
    assert count(PaymentRequest) == 0


def test_a_json_body_nested_too_deeply_is_refused(clinician):
    token = csrf_token(clinician, "/calls/")
    response = clinician.post(
        "/calls/start",
        data="[" * 100_000 + "]" * 100_000,
        headers={"Content-Type": "application/json", "X-CSRFToken": token},
    )
    assert response.status_code == 400
    assert "nested too deeply" in response.json["error"]["message"]


# Ids: ASCII digits within PostgreSQL's integer, in paths, forms and the session.


@pytest.mark.parametrize("call_id", ["2147483648", "9223372036854775808", "9" * 30])
def test_a_path_id_beyond_the_database_integer_is_not_found(clinician, call_id):
    assert clinician.get(f"/calls/{call_id}").status_code == 404
    assert clinician.post(f"/calls/{call_id}/end").status_code == 404


def test_a_path_id_in_another_scripts_digits_is_not_found(clinician, gp):
    call = start_call(clinician, gp)
    arabic_indic = "".join(chr(0x660 + int(digit)) for digit in str(call.id))
    assert clinician.get(f"/calls/{call.id}").status_code == 200
    assert clinician.get(f"/calls/{arabic_indic}").status_code == 404


@pytest.mark.parametrize("clinic_id", ["abc", "\u00b2", "2147483648", "9" * 25, "", "-1"])
def test_starting_a_call_in_a_clinic_that_is_not_an_id_is_not_found(
    clinician,
    clinic_id,
):
    token = csrf_token(clinician, "/calls/")
    response = clinician.post(
        "/calls/start", data={"csrf_token": token, "clinic_id": clinic_id, "title": ""}
    )
    assert response.status_code == 404
    assert count(Call) == 0


@pytest.mark.parametrize("user_id", ["\u00b2", "\u0663", "99999999999999999999", "-1", ""])
def test_a_session_naming_no_valid_user_id_signs_no_one_in(app, demo, user_id):
    assert load_signed_in_user(user_id) is None


@pytest.mark.parametrize("clinic_id", ["\u00b2", "2147483648", "1.0"])
def test_an_enablement_request_for_a_clinic_id_that_is_not_an_id_is_refused(
    client, demo, clinic_id
):
    sign_in(client, MANAGER)
    data = request_data(client, new_path(demo), **{"clinics-0-clinic_id": clinic_id})
    response = client.post(new_path(demo), data=data)
    assert response.status_code == 400
    assert "can no longer be requested" in response.get_data(as_text=True)
    assert requests_count() == 0


@pytest.mark.parametrize("index", ["\u00b2", "9" * 5000])
def test_a_form_entry_numbered_otherwise_than_in_ascii_digits_is_ignored(client, demo, index):
    sign_in(client, MANAGER)
    data = request_data(client, new_path(demo), send=False)
    data[f"clinics-{index}-clinic_id"] = str(demo.clinics[0].id)
    response = client.post(new_path(demo), data=data)
    assert response.status_code == 302
    assert requests_count() == 1


@pytest.mark.parametrize("key", ["PAY-\u00b2", "PAY-\u0663", "PAY-", "PAY"])
def test_a_jira_key_numbered_otherwise_than_in_ascii_digits_sorts_first(key):
    assert sorted(["PAY-10", key, "PAY-9"], key=polling._key_order) == [key, "PAY-9", "PAY-10"]


# Free text: one line of text, a clear message otherwise.


@pytest.mark.parametrize("title", ["Pat\tCitizen", "Pat\x7fCitizen", "Pat\x85Citizen"])
def test_a_call_title_with_control_characters_is_refused_with_a_message(
    clinician,
    gp,
    title,
):
    token = csrf_token(clinician, "/calls/")
    response = clinician.post(
        "/calls/start", data={"csrf_token": token, "clinic_id": gp.id, "title": title}
    )
    assert response.status_code == 303
    assert ONE_LINE_MESSAGE in clinician.get("/calls/").get_data(as_text=True)
    assert count(Call) == 0


@pytest.mark.parametrize("name", ["Pat\tCitizen", "Pat\u0085Citizen", "Pat\r\nCitizen"])
def test_a_display_name_with_control_characters_is_refused_with_a_message(
    app,
    clinician,
    gp,
    name,
):
    call = start_call(clinician, gp)
    patient = app.test_client()
    token = csrf_token(patient, f"/join/{call.guest_token}")
    response = patient.post(
        f"/join/{call.guest_token}", data={"csrf_token": token, "display_name": name}
    )
    assert response.status_code == 400
    assert ONE_LINE_MESSAGE in response.get_data(as_text=True)
    assert count(Participant) == 1  # the clinician


@pytest.mark.parametrize("description", ["Consult\tation", "Consult\u009bation", "Line\nbreak"])
def test_a_payment_description_with_control_characters_is_refused_before_stripe(
    app,
    clinician,
    gp,
    stripe_control,
    description,
):
    call = start_call(clinician, gp)
    join(app, call)
    data = {**request_form(clinician, call), "amount": "85", "description": description}
    response = clinician.post(
        f"/calls/{call.id}/payment-requests", data=data, headers={"Accept": "application/json"}
    )
    assert response.status_code == 400
    assert response.json == {"error": ONE_LINE_MESSAGE, "field": "description"}
    assert stripe_control.sessions() == []


# Webhooks: a validly signed but hostile envelope is refused with 400 and stored nowhere.


def post_signed_text(client, payload: str):
    body, header = signed_text(payload)
    return client.post(
        "/webhooks/stripe",
        data=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"created": 10**20},
        {"created": -(10**20)},
        {"created": "1767225600"},
        {"created": 1767225600.5},
        {"created": True},
        {"account": "acct_" + "a" * 300},
        {"account": 123},
        {"account": "acct_clinic\u0000"},
        {"id": "evt_" + "a" * 300},
        {"id": "evt_\u0000"},
        {"id": 12345},
        {"type": "account.updated\u0000"},
        {"type": "x" * 200},
        {"data": {"object": {"id": "acct_test_clinic", "name": "Pat\u0000"}}},
    ],
)
def test_a_signed_event_with_a_hostile_envelope_is_refused_and_not_stored(client, changes):
    response = post_event(client, {**event("account.updated"), **changes})
    assert response.status_code == 400
    assert count(StripeEvent) == 0


def test_a_signed_event_nested_too_deeply_is_refused(client):
    body = json.dumps(event("account.updated"))
    deep = body[:-1] + ', "extra": ' + "[" * 50_000 + "]" * 50_000 + "}"
    response = post_signed_text(client, deep)
    assert response.status_code == 400
    assert count(StripeEvent) == 0


def test_a_body_that_is_not_utf8_is_refused(client):
    _, header = signed_text("{}")
    response = client.post(
        "/webhooks/stripe", data=b'{"id": "\xff\xfe"}', headers={"Stripe-Signature": header}
    )
    assert response.status_code == 400
    assert count(StripeEvent) == 0


def jira_signed(client, body: bytes, secret: str = "jira_webhook_vcpay_sandbox"):
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        "/webhooks/jira",
        data=body,
        headers={"X-Hub-Signature": f"sha256={digest}", "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"issue": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        json.dumps({"issue": {"key": "PAY-1\u0000"}}).encode(),
        json.dumps({"issue": {"key": "PAY-" + "1" * 60}}).encode(),
        json.dumps({"issue": {"key": 5}}).encode(),
        json.dumps({"issue": {"key": "PAY-1"}, "comment": "\u0000"}).encode(),
    ],
)
def test_a_signed_jira_webhook_with_a_hostile_body_is_refused(client, body):
    response = jira_signed(client, body)
    assert response.status_code == 400


# Logs: no parameter values, no guest tokens.

PATIENT = "Pat Citizen-Secretname"


def test_a_database_error_is_logged_without_its_parameters(app, caplog):
    def failing():
        db.session.execute(
            text("SELECT * FROM no_such_table WHERE name = :name"), {"name": PATIENT}
        )

    app.add_url_rule("/failing", view_func=failing)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/failing")
    assert response.status_code == 500
    assert "no_such_table" in caplog.text
    assert PATIENT not in caplog.text


def test_the_webhook_inbox_keeps_parameters_out_of_its_errors(app):
    with inbox._inbox_engine().connect() as connection, pytest.raises(Exception) as error:
        connection.execute(text("SELECT * FROM no_such_table WHERE x = :x"), {"x": PATIENT})
    assert "no_such_table" in str(error.value)
    assert PATIENT not in str(error.value)


def test_an_error_on_a_guest_page_is_logged_without_the_token(app, caplog):
    app.add_url_rule("/join/<token>/crashing", view_func=lambda token: 1 / 0)
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/join/the-patients-secret-token/crashing")
    assert response.status_code == 500
    assert "/join/[hidden]/crashing" in caplog.text
    assert "the-patients-secret-token" not in caplog.text
