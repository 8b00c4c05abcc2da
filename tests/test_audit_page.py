"""The audit log page and its export: each admin reads their own scope only (an organisation
admin their organisation, a clinic admin their clinic), filters by person, kind and day, a
CSV that a spreadsheet reads back without running anything, and no way to change an entry."""

import csv
import io
import re
from datetime import timedelta

import pytest

from tests.conftest import csrf_token, sign_in
from tests.ledger_rows import sydney
from vcpay.audit.models import AuditEntry
from vcpay.audit.services import record_audit
from vcpay.extensions import db
from vcpay.people.demo import DEMO_PASSWORD, seed_demo
from vcpay.people.models import Clinic, ClinicRole, Organisation
from vcpay.people.services import (
    add_clinic_role,
    add_organisation_admin,
    create_user,
    find_user_by_email,
)

ORG_ADMIN = "orgadmin@harbourside.example"
CLINIC_ADMIN = "clinicadmin@harbourside.example"
CLINICIAN = "clinician@harbourside.example"
OTHER_ADMIN = "admin@elsewhere.example"
FORMULA = '=HYPERLINK("http://evil.example","x")'


def _entry(action, target, actor, moment, **details) -> AuditEntry:
    entry = record_audit(action, target, actor=actor, **details)
    entry.occurred_at = moment
    return entry


def _admin(email: str, name: str):
    """Someone about to be made an admin, who signs in with the demo password alone, as the
    demo's people do on the local demo (tests/test_two_factor.py tests two-factor itself)."""
    person = create_user(email, name, DEMO_PASSWORD)
    person.two_factor_exempt = True
    return person


@pytest.fixture
def world(app):
    """The demo organisation (GP and physio clinics) and another organisation, with one
    entry in each scope, each named by its ``marker`` detail."""
    demo = seed_demo()
    gp = next(c for c in demo.clinics if c.name == "Harbourside GP Clinic")
    physio = next(c for c in demo.clinics if c is not gp)
    elsewhere = Organisation(name="Elsewhere Health")
    far_clinic = Clinic(organisation=elsewhere, name="Elsewhere Clinic")
    db.session.add_all([elsewhere, far_clinic])
    other = _admin(OTHER_ADMIN, FORMULA)
    add_organisation_admin(other, elsewhere)
    db.session.flush()
    org_admin = find_user_by_email(ORG_ADMIN)
    clinic_admin = find_user_by_email(CLINIC_ADMIN)
    _entry("clinic.renamed", gp, org_admin, sydney(2026, 3, 1, 9), marker="gp-entry")
    _entry("stripe.linked", physio, org_admin, sydney(2026, 3, 1, 10), marker="physio-entry")
    _entry("enablement.submitted", demo, clinic_admin, sydney(2026, 3, 1, 11), marker="org-entry")
    _entry("clinic.renamed", far_clinic, other, sydney(2026, 3, 1, 12), marker="far-entry")
    db.session.commit()
    return {"gp": gp, "physio": physio, "far": far_clinic, "other": other}


def _browser(app, email):
    browser = app.test_client()
    sign_in(browser, email)
    return browser


def _page(browser, query="", status=200) -> str:
    response = browser.get(f"/audit/?{query}")
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def _markers(html: str) -> set[str]:
    return set(re.findall(r"[a-z]+-entry", html))


def test_an_organisation_admin_reads_their_organisation_only(app, world):
    assert _markers(_page(_browser(app, ORG_ADMIN))) == {"gp-entry", "physio-entry", "org-entry"}
    assert _markers(_page(_browser(app, OTHER_ADMIN))) == {"far-entry"}


def test_a_clinic_admin_reads_their_clinic_only(app, world):
    # Not the physio clinic's, though it is of the same organisation, nor the organisation's.
    assert _markers(_page(_browser(app, CLINIC_ADMIN))) == {"gp-entry"}


def test_clinicians_are_refused_and_people_without_a_role_see_nothing(app, world):
    assert _browser(app, CLINICIAN).get("/audit/").status_code == 403
    assert _browser(app, CLINICIAN).get("/audit/export.csv").status_code == 403
    create_user("nobody@example.org", "Nobody", DEMO_PASSWORD)
    db.session.commit()
    assert _browser(app, "nobody@example.org").get("/audit/").status_code == 404
    assert app.test_client().get("/audit/").status_code == 302  # to the sign-in page


def test_a_clinic_admin_of_another_organisations_clinic_sees_only_that(app, world):
    person = _admin("both@example.org", "Both")
    add_clinic_role(person, db.session.merge(world["far"]), ClinicRole.CLINIC_ADMIN)
    db.session.commit()
    assert _markers(_page(_browser(app, "both@example.org"))) == {"far-entry"}


def test_filters_by_person_kind_and_day(app, world):
    browser = _browser(app, ORG_ADMIN)
    clinic_admin = find_user_by_email(CLINIC_ADMIN)
    assert _markers(_page(browser, f"person={clinic_admin.id}")) == {"org-entry"}
    assert _markers(_page(browser, "kind=stripe")) == {"physio-entry"}
    assert _markers(_page(browser, "kind=request")) == {"org-entry"}
    assert _markers(_page(browser, "kind=refund")) == set()
    assert _markers(_page(browser, "kind=clinic")) == {"gp-entry"}
    # Days are the organisation's (Sydney's): 23:30 on 1 March there is 1 March.
    late = _entry("payment.refunded", world["gp"], clinic_admin, sydney(2026, 3, 1, 23, 30),
                  marker="late-entry")  # fmt: skip
    _entry("payment.requested", world["gp"], clinic_admin, sydney(2026, 3, 2, 0, 30),
           marker="next-entry")  # fmt: skip
    db.session.commit()
    assert late.occurred_at.day == 1 and late.occurred_at.hour == 12  # UTC
    one_day = _markers(_page(browser, "from=2026-03-01&to=2026-03-01"))
    assert one_day == {"gp-entry", "physio-entry", "org-entry", "late-entry"}
    assert _markers(_page(browser, "from=2026-03-02")) == {"next-entry"}
    assert _markers(_page(browser, "kind=refund")) == {"late-entry"}
    assert _markers(_page(browser, "kind=payment")) == {"next-entry"}


@pytest.mark.parametrize(
    "query",
    [
        "person=abc",
        "person=%EF%BC%91",  # a full-width digit one
        "person=99999999999999999999",
        "kind=everything",
        "from=2026-13-01",
        "from=%D9%A2%D9%A0%D9%A2%D9%A6-03-01",  # Arabic-Indic digits
        "from=2026-03-02&to=2026-03-01",
        "after=not-a-cursor",
    ],
)
def test_bad_filters_are_refused_with_a_message(app, world, query):
    browser = _browser(app, ORG_ADMIN)
    page = _page(browser, query, status=400)
    assert 'class="notice error"' in page
    if not query.startswith("after="):  # the export has no pages
        assert browser.get(f"/audit/export.csv?{query}").status_code == 400


def test_a_person_of_another_organisation_is_not_a_filter_choice(app, world):
    browser = _browser(app, ORG_ADMIN)
    _page(browser, f"person={world['other'].id}", status=400)
    assert browser.get(f"/audit/export.csv?person={world['other'].id}").status_code == 400
    assert browser.get("/audit/export.csv?kind=nope").status_code == 400
    assert browser.get("/audit/?kind=a%00b").status_code == 400


def test_the_export_reads_back_with_formulas_neutralised(app, world):
    person = _admin("also@elsewhere.example", "Also")
    add_organisation_admin(person, db.session.merge(world["far"]).organisation)
    db.session.commit()
    response = _browser(app, "also@elsewhere.example").get("/audit/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-log-')
    body = response.get_data()
    assert body.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert len(rows) == 1
    (row,) = rows
    assert row["Person"] == "'" + FORMULA  # the other admin's name looks like a formula
    assert row["Person's email"] == OTHER_ADMIN
    assert row["Date and time"] == "2026-03-01T12:00:00+11:00"
    assert row["Action"] == "clinic.renamed"
    assert row["Kind"] == "Clinics"
    assert row["Clinic"] == "Elsewhere Clinic"
    assert '"marker": "far-entry"' in row["Details"]


def test_the_export_follows_the_filters(app, world):
    response = _browser(app, ORG_ADMIN).get("/audit/export.csv?kind=stripe")
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert [row["Action"] for row in rows] == ["stripe.linked"]


def test_pages_go_back_in_time_by_keyset(app, world):
    org_admin = find_user_by_email(ORG_ADMIN)
    gp = db.session.merge(world["gp"])
    for n in range(55):
        _entry("clinic.renamed", gp, org_admin, sydney(2026, 4, 1, 9) + timedelta(minutes=n),
               marker=f"n{n:02d}")  # fmt: skip
    db.session.commit()
    browser = _browser(app, ORG_ADMIN)
    first = _page(browser, "kind=clinic")
    assert "n54" in first and "n05" in first and "n04" not in first
    older = re.search(r'href="([^"]*after=[^"]+)" rel="next"', first)
    assert older
    second = browser.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "n04" in second and "n00" in second and "gp-entry" in second
    assert "n05" not in second
    assert 'rel="next"' not in second


def test_an_action_in_a_request_keeps_where_it_came_from(app, world):
    browser = _browser(app, CLINIC_ADMIN)
    gp_id = world["gp"].id
    path = f"/payments/clinics/{gp_id}/time-zone"
    response = browser.post(
        path, data={"time_zone": "Australia/Perth", "csrf_token": csrf_token(browser, path)}
    )
    assert response.status_code == 303
    page = _page(browser, "kind=setting")
    assert "clinic.time_zone_changed" in page and "127.0.0.1" in page
    assert "Sam Patel" in page


def test_entries_cannot_be_changed_through_the_product(app, world):
    audit_rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/audit")]
    assert {r.rule for r in audit_rules} == {"/audit/", "/audit/export.csv"}
    for rule in audit_rules:
        assert rule.methods <= {"GET", "HEAD", "OPTIONS"}
    browser = _browser(app, ORG_ADMIN)
    for method in (browser.post, browser.put, browser.delete, browser.patch):
        assert method("/audit/").status_code in {400, 405}  # 400: no CSRF token
    # No other route names an audit entry either.
    assert not [
        r.rule for r in app.url_map.iter_rules() if "audit" in r.rule and r not in audit_rules
    ]


def test_the_configure_menu_links_the_page_for_admins_only(app, world):
    assert 'href="/audit/"' in _browser(app, CLINIC_ADMIN).get("/").get_data(as_text=True)
    assert 'href="/audit/"' not in _browser(app, CLINICIAN).get("/").get_data(as_text=True)
