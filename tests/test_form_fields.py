"""Form fields as screen readers meet them: every field has a label, points at the hints and
errors that exist beside it, and carries no attribute that reads "None"."""

from html.parser import HTMLParser

import pytest

from tests.conftest import csrf_token, sign_in
from tests.payment_steps import (
    ask,
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    sent_back,
    start_call,
)
from tests.test_enablement_requests import MANAGER, new_path, request_data
from vcpay.auth.forms import SignInForm
from vcpay.forms import field_aria

# What these tests check happens before or beside any query: SQLite alone runs them.
pytestmark = pytest.mark.any_database


class Fields(HTMLParser):
    """The page's ids, its labels' ``for``, and its fields with their attributes."""

    def __init__(self, html: str):
        super().__init__()
        self.ids: set[str] = set()
        self.labelled: set[str] = set()
        self.fields: list[dict[str, str | None]] = []
        self.described: list[tuple[str, str]] = []  # (tag, aria-describedby) of any element
        self._in_label = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if "aria-describedby" in attributes:
            self.described.append((tag, attributes["aria-describedby"] or ""))
        if tag == "label":
            self._in_label += 1
            if attributes.get("for"):
                self.labelled.add(attributes["for"])
        visible = attributes.get("type") not in ("hidden", "submit", "button")
        if tag in ("input", "select", "textarea") and visible:
            self.fields.append({**attributes, "_wrapped": "y" if self._in_label else None})

    def handle_endtag(self, tag):
        if tag == "label":
            self._in_label -= 1


def problems(html: str) -> list[str]:
    page = Fields(html)
    found = []
    for field in page.fields:
        name = field.get("name") or field.get("id")
        for attribute, value in field.items():
            if value == "None":
                found.append(f'{name}: {attribute}="None"')
        if field.get("id") not in page.labelled and not field["_wrapped"]:
            found.append(f"{name}: no label")
        if field.get("aria-invalid") == "true" and not field.get("aria-describedby"):
            found.append(f"{name}: invalid, but not tied to its error")
    for tag, described in page.described:
        for one in described.split() or ["(empty)"]:
            if one not in page.ids:
                found.append(f"a {tag}'s aria-describedby {one}: not on the page")
    return found


def test_field_aria_gives_only_the_attributes_that_apply(app):
    with app.test_request_context():
        form = SignInForm(meta={"csrf": False})
        assert field_aria(form.email) == {}
        assert field_aria(form.email, "email-hint") == {"aria-describedby": "email-hint"}
        form.email.errors = ["Enter your email address."]
        assert field_aria(form.email, "email-hint") == {
            "aria-describedby": "email-hint email-error",
            "aria-invalid": "true",
        }
        assert field_aria(form.email, error=False) == {}
        assert field_aria(form.password, error="form-error") == {
            "aria-describedby": "form-error",
            "aria-invalid": "true",
        }


def test_the_sign_in_form_ties_its_errors_to_its_fields(client, demo):
    fresh = client.get("/sign-in").get_data(as_text=True)
    assert problems(fresh) == []
    assert "None" not in fresh
    refused = client.post(
        "/sign-in", data={"csrf_token": csrf_token(client), "email": "", "password": ""}
    ).get_data(as_text=True)
    assert problems(refused) == []
    assert 'aria-describedby="email-error" aria-invalid="true"' in refused


def test_the_enablement_form_ties_its_errors_to_its_fields(client, demo):
    sign_in(client, MANAGER)
    fresh = client.get(new_path(demo)).get_data(as_text=True)
    assert problems(fresh) == []
    data = request_data(client, new_path(demo), contact_email="bad", contact_phone="x")
    refused = client.post(new_path(demo), data=data).get_data(as_text=True)
    assert problems(refused) == []
    assert 'aria-describedby="contact_email-error" aria-invalid="true"' in refused
    data = request_data(client, new_path(demo), clinics=[])
    no_clinic = client.post(new_path(demo), data=data).get_data(as_text=True)
    assert problems(no_clinic) == []
    assert '<fieldset aria-describedby="clinics-hint clinics-error">' in no_clinic


def test_the_call_screen_and_the_join_page_tie_hints_and_errors(app, clinician, gp):
    call = start_call(clinician, gp)
    assert problems(clinician.get(f"/calls/{call.id}").get_data(as_text=True)) == []
    refused = sent_back(clinician, call, ask(clinician, call, "lots"))
    assert problems(refused) == []
    guest = app.test_client()
    join_page = f"/join/{call.guest_token}"
    assert problems(guest.get(join_page).get_data(as_text=True)) == []
    no_name = guest.post(join_page, data={"csrf_token": csrf_token(guest, join_page)})
    assert problems(no_name.get_data(as_text=True)) == []
    assert 'aria-describedby="display_name-error"' in no_name.get_data(as_text=True)
