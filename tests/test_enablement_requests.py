"""The request form, endorsement, sending back and withdrawing, as people use them."""

import re

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import csrf_token, sign_in
from vcpay.enablement.models import EnablementRequest, RequestState
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail

MANAGER = "manager@harbourside.example"
ORG_ADMIN = "orgadmin@harbourside.example"
CLINIC_ADMIN = "clinicadmin@harbourside.example"


def requests_count() -> int:
    return db.session.scalar(select(func.count()).select_from(EnablementRequest))


def emails_to(address: str) -> list[OutboundEmail]:
    return list(db.session.scalars(select(OutboundEmail).filter_by(recipient=address)))


def form_fields(html: str) -> dict[str, str]:
    """The clinic entries the form offers: clinic id field name -> clinic id."""
    return dict(re.findall(r'name="(clinics-\d+-clinic_id)" type="hidden" value="(\d+)"', html))


def request_data(client, path: str, *, send=True, clinics=None, **overrides) -> dict:
    html = client.get(path).get_data(as_text=True)
    data = {
        "csrf_token": csrf_token(client, path),
        "contact_name": "Morgan Lee",
        "contact_email": "morgan@harbourside.example",
        "contact_phone": "+61 2 5550 0100",
        "accept_terms": "y",
        "notes": "",
    }
    for name, clinic_id in form_fields(html).items():
        prefix = name.rsplit("-", 1)[0]
        data[name] = clinic_id
        if clinics is None or int(clinic_id) in clinics:
            data[f"{prefix}-selected"] = "y"
            data[f"{prefix}-has_stripe_account"] = "y"
            data[f"{prefix}-stripe_account_hint"] = f"billing+{clinic_id}@harbourside.example"
    data["submit" if send else "save_draft"] = "x"
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def new_path(demo) -> str:
    return f"/enablement/organisations/{demo.id}/requests/new"


def test_the_manager_sends_a_request_straight_to_the_service_desk(client, demo):
    sign_in(client, MANAGER)
    response = client.post(new_path(demo), data=request_data(client, new_path(demo)))
    assert response.status_code == 302
    request = db.session.scalar(select(EnablementRequest))
    assert request.state == RequestState.QUEUED
    assert request.endorsed_by.email == MANAGER
    assert {rc.clinic.name for rc in request.clinics} == {c.name for c in demo.clinics}
    assert all(rc.has_stripe_account and rc.stripe_account_hint for rc in request.clinics)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Queued \u2013 will be sent" in page
    assert "Request sent to the service desk." in page


def test_another_admins_request_waits_for_the_manager_who_is_emailed(client, demo):
    sign_in(client, ORG_ADMIN)
    client.post(new_path(demo), data=request_data(client, new_path(demo)))
    request = db.session.scalar(select(EnablementRequest))
    assert request.state == RequestState.AWAITING_ENDORSEMENT
    [email] = emails_to(MANAGER)
    assert f"/enablement/requests/{request.id}" in email.body_text
    # The requester cannot endorse their own request.
    token = csrf_token(client, f"/enablement/requests/{request.id}")
    refused = client.post(f"/enablement/requests/{request.id}/endorse", data={"csrf_token": token})
    assert refused.status_code == 403
    assert db.session.get(EnablementRequest, request.id).state == RequestState.AWAITING_ENDORSEMENT


def waiting_for_the_manager(client, demo) -> int:
    """An organisation admin's request, with the manager now signed in to decide it."""
    sign_in(client, ORG_ADMIN)
    client.post(new_path(demo), data=request_data(client, new_path(demo)))
    request_id = db.session.scalar(select(EnablementRequest.id))
    client.delete_cookie("vcpay_session")
    sign_in(client, MANAGER)
    return request_id


def test_the_manager_endorses_a_waiting_request(client, demo):
    request_id = waiting_for_the_manager(client, demo)
    detail = f"/enablement/requests/{request_id}"
    assert "Endorse and send to the service desk" in client.get(detail).get_data(as_text=True)
    client.post(f"{detail}/endorse", data={"csrf_token": csrf_token(client, detail)})
    request = db.session.get(EnablementRequest, request_id)
    assert request.state == RequestState.QUEUED
    assert [e.kind for e in request.events] == ["drafted", "submitted", "endorsed"]


def test_the_manager_sends_a_request_back_with_a_reason(client, demo):
    request_id = waiting_for_the_manager(client, demo)
    detail = f"/enablement/requests/{request_id}"
    token = csrf_token(client, detail)
    empty = client.post(f"{detail}/send-back", data={"csrf_token": token, "reason": " "})
    assert "Say why you are sending the request back." in client.get(
        empty.headers["Location"]
    ).get_data(as_text=True)
    assert 'maxlength="2000"' in client.get(detail).get_data(as_text=True)
    too_long = client.post(f"{detail}/send-back", data={"csrf_token": token, "reason": "x" * 2001})
    assert too_long.status_code == 400  # the form's own limit; a browser cannot send more
    assert db.session.get(EnablementRequest, request_id).state == RequestState.AWAITING_ENDORSEMENT
    client.post(f"{detail}/send-back", data={"csrf_token": token, "reason": "Wrong clinic."})
    request = db.session.get(EnablementRequest, request_id)
    assert request.state == RequestState.SENT_BACK
    assert request.sent_back_reason == "Wrong clinic."
    assert any("Wrong clinic." in e.body_text for e in emails_to(ORG_ADMIN))


def test_every_missing_answer_gets_its_own_message_and_nothing_is_saved(client, demo):
    sign_in(client, MANAGER)
    data = request_data(
        client,
        new_path(demo),
        contact_name="",
        contact_phone="call me",
        accept_terms=None,
        **{"clinics-0-has_stripe_account": None, "clinics-0-stripe_account_hint": ""},
    )
    response = client.post(new_path(demo), data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Confirm that Harbourside GP Clinic has a Stripe account." in html
    assert "Enter the email or business name of Harbourside GP Clinic" in html
    assert "Enter your name." in html
    assert "Enter a phone number like" in html
    assert "Accept the terms and fees" in html
    assert requests_count() == 0


def test_a_request_without_an_email_or_phone_to_reach_someone_is_refused(client, demo):
    sign_in(client, MANAGER)
    data = request_data(client, new_path(demo), contact_email="", contact_phone=" ")
    response = client.post(new_path(demo), data=data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Enter your email address." in html
    assert "Enter a phone number the service desk can call." in html
    assert requests_count() == 0


def test_no_clinic_chosen_is_refused(client, demo):
    sign_in(client, MANAGER)
    response = client.post(new_path(demo), data=request_data(client, new_path(demo), clinics=[]))
    assert "Choose at least one clinic." in response.get_data(as_text=True)
    assert requests_count() == 0


def test_a_draft_is_kept_incomplete_and_sent_later(client, demo):
    sign_in(client, MANAGER)
    data = request_data(client, new_path(demo), send=False, accept_terms=None)
    response = client.post(new_path(demo), data=data)
    request = db.session.scalar(select(EnablementRequest))
    assert request.state == RequestState.DRAFT
    edit = f"/enablement/requests/{request.id}/edit"
    assert response.headers["Location"] == f"/enablement/requests/{request.id}"
    client.post(edit, data=request_data(client, edit))
    assert db.session.get(EnablementRequest, request.id).state == RequestState.QUEUED


def test_a_clinic_taken_off_a_draft_is_no_longer_in_it(client, demo):
    sign_in(client, MANAGER)
    gp = next(c for c in demo.clinics if "GP" in c.name)
    client.post(new_path(demo), data=request_data(client, new_path(demo), send=False))
    request = db.session.scalar(select(EnablementRequest))
    assert len(request.clinics) == 2
    edit = f"/enablement/requests/{request.id}/edit"
    client.post(edit, data=request_data(client, edit, send=False, clinics=[gp.id]))
    db.session.expire_all()
    request = db.session.get(EnablementRequest, request.id)
    assert [rc.clinic_id for rc in request.clinics] == [gp.id]
    assert request.state == RequestState.DRAFT


def test_clinics_already_asked_for_are_not_offered_again(client, demo):
    sign_in(client, MANAGER)
    gp = next(c for c in demo.clinics if "GP" in c.name)
    client.post(new_path(demo), data=request_data(client, new_path(demo), clinics=[gp.id]))
    offered = form_fields(client.get(new_path(demo)).get_data(as_text=True)).values()
    assert str(gp.id) not in offered
    assert len(offered) == 1


def test_a_clinic_admin_asks_only_for_their_own_clinic(client, demo):
    sign_in(client, CLINIC_ADMIN)
    offered = form_fields(client.get(new_path(demo)).get_data(as_text=True)).values()
    gp = next(c for c in demo.clinics if "GP" in c.name)
    assert list(offered) == [str(gp.id)]


def test_a_tampered_clinic_id_is_refused(client, demo):
    other = factories.organisation("Riverside Care", "Riverside Dental")
    db.session.commit()
    sign_in(client, CLINIC_ADMIN)
    data = request_data(client, new_path(demo))
    data["clinics-0-clinic_id"] = str(other.clinics[0].id)
    response = client.post(new_path(demo), data=data)
    assert response.status_code == 400
    assert "can no longer be requested" in response.get_data(as_text=True)
    assert requests_count() == 0


def test_another_organisation_cannot_see_or_act_on_a_request(client, demo):
    sign_in(client, MANAGER)
    client.post(new_path(demo), data=request_data(client, new_path(demo)))
    request_id = db.session.scalar(select(EnablementRequest.id))
    other = factories.organisation("Riverside Care", "Riverside Dental")
    factories.org_admin("boss@riverside.example", other, manager=True)
    db.session.commit()
    client.delete_cookie("vcpay_session")
    sign_in(client, "boss@riverside.example", factories.PASSWORD)
    assert client.get(f"/enablement/requests/{request_id}").status_code == 404
    assert client.get(f"/enablement/organisations/{demo.id}/requests").status_code == 404
    assert client.get(new_path(demo)).status_code == 404
    token = csrf_token(client, "/")
    for action in ("endorse", "withdraw", "send-back"):
        response = client.post(
            f"/enablement/requests/{request_id}/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 404
    assert db.session.get(EnablementRequest, request_id).state == RequestState.QUEUED


def test_a_clinician_cannot_request_the_gateway(client, demo):
    sign_in(client, "clinician@harbourside.example")
    assert client.get(new_path(demo)).status_code == 403


def test_withdrawing_an_open_request(client, demo):
    sign_in(client, MANAGER)
    client.post(new_path(demo), data=request_data(client, new_path(demo)))
    request_id = db.session.scalar(select(EnablementRequest.id))
    detail = f"/enablement/requests/{request_id}"
    client.post(f"{detail}/withdraw", data={"csrf_token": csrf_token(client, detail)})
    assert db.session.get(EnablementRequest, request_id).state == RequestState.WITHDRAWN
    # Its clinics can be asked for again.
    assert len(form_fields(client.get(new_path(demo)).get_data(as_text=True))) == 2


def test_a_request_without_a_telehealth_manager_is_refused_clearly(client, app):
    org = factories.organisation("No Manager Health", "Lonely Clinic")
    factories.org_admin("admin@nomanager.example", org, manager=False)
    db.session.commit()
    sign_in(client, "admin@nomanager.example", factories.PASSWORD)
    path = f"/enablement/organisations/{org.id}/requests/new"
    response = client.post(path, data=request_data(client, path))
    assert "no authorised telehealth manager" in client.get(response.headers["Location"]).get_data(
        as_text=True
    )
    assert requests_count() == 0


@pytest.mark.parametrize("email", [MANAGER, CLINIC_ADMIN])
def test_client_payments_offers_the_request_while_the_gateway_is_off(client, demo, email):
    sign_in(client, email)
    html = client.get("/client-payments/").get_data(as_text=True)
    assert "Request the Payment Gateway" in html
