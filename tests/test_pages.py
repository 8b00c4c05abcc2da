"""Pages by role and scope, the language switcher, error pages and response headers."""

import re

import pytest

from tests import factories
from tests.conftest import csrf_token, sign_in
from tests.processes import free_port
from vcpay import create_app
from vcpay.extensions import db
from vcpay.health.services import record_heartbeat
from vcpay.people.models import ClinicRole
from vcpay.people.services import find_user_by_email

# What these tests check happens before or beside any query: SQLite alone runs them.
pytestmark = pytest.mark.any_database

NAV = re.compile(r'<nav aria-label="Main">(.*?)</nav>', re.S)


def navigation(client, path: str = "/") -> list[str]:
    """The navigation's links in order, those in a menu named by it: "Configure: …"."""
    match = NAV.search(client.get(path).get_data(as_text=True))
    if not match:
        return []
    bar, _, menu = match[1].partition("<details")
    links = re.findall(r">([^<>]+)</a>", bar)
    if menu:
        title = re.search(r"<summary[^>]*>([^<>]+)</summary>", menu)[1]
        links += [f"{title}: {link}" for link in re.findall(r">([^<>]+)</a>", menu)]
    return links


ADMIN_LINKS = [
    "Home",
    "Payments",
    "Configure: Client Payments",
    "Configure: Team",
    "Configure: Audit log",
]


@pytest.mark.parametrize(
    ("email", "links"),
    [
        ("manager@harbourside.example", ADMIN_LINKS),
        ("orgadmin@harbourside.example", ADMIN_LINKS),
        ("clinicadmin@harbourside.example", ADMIN_LINKS),
        ("clinician@harbourside.example", ["Home", "Calls", "Payments"]),
    ],
)
def test_each_demo_person_sees_the_navigation_for_their_role(client, demo, email, links):
    sign_in(client, email)
    assert navigation(client) == links


def test_configure_is_a_disclosure_that_marks_the_section_shown(client, demo):
    sign_in(client, "clinicadmin@harbourside.example")
    home = NAV.search(client.get("/").get_data(as_text=True))[1]
    section = NAV.search(client.get("/client-payments/").get_data(as_text=True))[1]

    # <details> opens and closes without JavaScript; its links are plain links.
    assert re.search(r"<details>\s*<summary>Configure</summary>", home)
    assert 'aria-current="page"' not in home.partition("<details")[2]
    assert '<summary class="current">Configure</summary>' in section
    [current] = re.findall(r'<a href="([^"]+)"\s*aria-current="page"', section)
    assert current == "/client-payments/"


def test_home_lists_roles_by_organisation_and_clinic(client, demo):
    sign_in(client, "clinicadmin@harbourside.example")
    html = client.get("/").get_data(as_text=True)
    assert "Harbourside GP Clinic" in html
    assert "Clinic admin" in html
    assert "Harbourside Physiotherapy" not in html  # not their clinic


@pytest.fixture
def other_org(demo):
    other = factories.organisation("Riverside Care", "Riverside Dental")
    factories.org_admin("admin@riverside.example", other, manager=True)
    db.session.commit()
    return other


def test_client_payments_lists_only_clinics_the_admin_manages(client, demo, other_org):
    sign_in(client, "clinicadmin@harbourside.example")
    html = client.get("/client-payments/").get_data(as_text=True)
    assert "Harbourside GP Clinic" in html
    assert "Harbourside Physiotherapy" not in html
    assert "Riverside Dental" not in html


def test_an_admin_of_another_organisation_gets_404(client, demo, other_org):
    sign_in(client, "admin@riverside.example", factories.PASSWORD)
    gp = demo.clinics[0]
    assert client.get(f"/client-payments/clinics/{gp.id}").status_code == 404
    assert client.get(f"/organisations/{demo.id}").status_code == 404
    assert client.get(f"/organisations/{other_org.id}").status_code == 200


def test_a_clinician_is_refused_client_payments_with_403(client, demo):
    sign_in(client, "clinician@harbourside.example")
    gp = next(c for c in demo.clinics if c.name == "Harbourside GP Clinic")
    response = client.get(f"/client-payments/clinics/{gp.id}")
    assert response.status_code == 403
    assert "You do not have permission" in response.get_data(as_text=True)


def test_a_clinic_admin_cannot_open_a_sibling_clinic(client, demo):
    sign_in(client, "clinicadmin@harbourside.example")
    physio = next(c for c in demo.clinics if c.name == "Harbourside Physiotherapy")
    assert client.get(f"/client-payments/clinics/{physio.id}").status_code == 404


def test_an_organisation_admin_opens_every_clinic_of_their_organisation(client, demo):
    sign_in(client, "orgadmin@harbourside.example")
    for clinic in demo.clinics:
        response = client.get(f"/client-payments/clinics/{clinic.id}")
        assert response.status_code == 200
        assert clinic.name in response.get_data(as_text=True)


def test_a_missing_clinic_is_404(client, demo):
    sign_in(client, "orgadmin@harbourside.example")
    assert client.get("/client-payments/clinics/999999").status_code == 404


def test_calls_lists_the_clinicians_clinics(client, demo):
    sign_in(client, "clinician@harbourside.example")
    html = client.get("/calls/").get_data(as_text=True)
    assert "Harbourside GP Clinic" in html


def test_choosing_a_language_is_remembered(client, demo):
    sign_in(client, "clinician@harbourside.example")
    token = csrf_token(client, "/")
    response = client.post(
        "/language", data={"language": "sr_Latn", "next": "/calls/", "csrf_token": token}
    )
    assert response.headers["Location"] == "/calls/"
    assert '<html lang="sr-Latn">' in client.get("/calls/").get_data(as_text=True)
    assert find_user_by_email("clinician@harbourside.example").locale == "sr_Latn"


def test_an_unknown_language_or_foreign_next_is_refused(client):
    token = csrf_token(client)
    response = client.post(
        "/language",
        data={"language": "xx", "next": "https://evil.example/", "csrf_token": token},
    )
    assert response.headers["Location"] == "/"
    assert "Choose one of the languages" in client.get("/sign-in").get_data(as_text=True)
    assert '<html lang="en">' in client.get("/sign-in").get_data(as_text=True)


def test_the_browser_language_is_used_until_one_is_chosen(client):
    html = client.get("/sign-in", headers={"Accept-Language": "sr"}).get_data(as_text=True)
    assert '<html lang="sr-Cyrl">' in html


def test_errors_are_html_for_people_and_json_for_api_clients(client):
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert page.mimetype == "text/html"
    assert "We could not find that page" in page.get_data(as_text=True)
    api = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert api.status_code == 404
    assert api.get_json() == {
        "error": {"status": 404, "message": api.get_json()["error"]["message"]}
    }
    assert client.get("/api/anything").is_json


def test_an_unexpected_error_shows_no_stack_trace(app, client):
    @app.route("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = client.get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong on our side" in body
    assert "secret internals" not in body
    assert "Traceback" not in body


def test_every_page_has_security_headers(client):
    response = client.get("/sign-in")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_assets_are_served_locally(client):
    html = client.get("/sign-in").get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    assert client.get("/static/css/vcpay.css").status_code == 200


def test_admins_are_warned_when_background_work_has_stopped(client, demo):
    sign_in(client, "orgadmin@harbourside.example")
    assert "Background processing has not reported" in client.get("/").get_data(as_text=True)
    record_heartbeat()
    db.session.commit()
    assert "Background processing has not reported" not in client.get("/").get_data(as_text=True)


def test_clinicians_are_not_shown_the_background_warning(client, demo):
    sign_in(client, "clinician@harbourside.example")
    assert "Background processing" not in client.get("/").get_data(as_text=True)


def test_someone_with_no_role_is_told_so(client, app):
    factories.person("new@harbourside.example")
    db.session.commit()
    sign_in(client, "new@harbourside.example", factories.PASSWORD)
    assert "You do not have a role" in client.get("/").get_data(as_text=True)
    assert navigation(client) == ["Home"]
    assert client.get("/client-payments/").status_code == 200


def test_healthz_reports_the_database_and_the_last_heartbeat(client):
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok"
    assert (body["database"], body["broker"], body["redis"]) == ("ok", "ok", "not configured")
    assert client.get("/readyz").status_code == 200
    assert body["last_worker_heartbeat"] is None
    record_heartbeat()
    db.session.commit()
    assert client.get("/healthz").get_json()["last_worker_heartbeat"] is not None


def test_without_its_database_the_web_process_is_alive_and_not_ready(tmp_path):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'missing' / 'vcpay.sqlite'}",
            "CELERY_BROKER_URL": "memory://",
        }
    )
    health = app.test_client().get("/healthz")
    assert health.status_code == 200  # a restart would not bring the database back
    body = health.get_json()
    assert (body["status"], body["database"], body["broker"]) == (
        "unavailable",
        "unreachable",
        "ok",
    )
    assert app.test_client().get("/readyz").status_code == 503
    app.extensions["call_waker"].stop()


def test_with_redis_and_the_broker_refusing_the_web_process_is_degraded_and_not_ready(tmp_path):
    """A real Redis address where nothing listens, for Redis and for the broker: both are
    named, the database is fine, and a load balancer sends this instance no new work."""
    refused = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'vcpay.sqlite'}",
            "REDIS_URL": refused,
            "CELERY_BROKER_URL": refused,
            "RATELIMIT_STORAGE_URI": "memory://",
        }
    )
    try:
        with app.app_context():
            db.create_all()
        health = app.test_client().get("/healthz")
        assert health.status_code == 200  # alive: a restart would not bring Redis back
        body = health.get_json()
        assert (body["status"], body["database"]) == ("degraded", "ok")
        assert (body["redis"], body["broker"]) == ("unreachable", "unreachable")
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503
        assert (ready.get_json()["ready"], ready.get_json()["database"]) == (False, "ok")
    finally:
        with app.app_context():
            db.engine.dispose()
        app.extensions["call_waker"].stop()


def test_a_user_may_hold_roles_in_two_organisations(client, demo, other_org):
    person = find_user_by_email("clinician@harbourside.example")
    from vcpay.people.services import add_clinic_role

    add_clinic_role(person, other_org.clinics[0], ClinicRole.CLINIC_ADMIN)
    db.session.commit()
    sign_in(client, "clinician@harbourside.example")
    assert navigation(client) == [
        "Home",
        "Calls",
        "Payments",
        "Configure: Client Payments",
        "Configure: Team",
        "Configure: Audit log",
    ]
    html = client.get("/").get_data(as_text=True)
    assert "Harbourside Health" in html and "Riverside Care" in html
