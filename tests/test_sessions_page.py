"""Your sessions: each browser a person is signed in on, ended one by one or all but this one;
an idle admin's sign-in ends; a sign-in from a new browser is emailed."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import csrf_token, sign_in
from vcpay.audit.models import AuditEntry
from vcpay.auth.browsers import browser_name
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail
from vcpay.people.models import SignInSession
from vcpay.people.services import find_user_by_email

MANAGER = "manager@harbourside.example"  # organisation admin
CLINICIAN = "clinician@harbourside.example"
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)

HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture
def app_overrides() -> dict:
    # tests/conftest.py turns sign-in emails off for every other test; these are about them.
    return {
        "CELERY_BROKER_URL": "memory://",
        "RATELIMIT_STORAGE_URI": "memory://",
        "NEW_BROWSER_EMAILS": True,
    }


def browser(app, email: str = MANAGER, agent: str = FIREFOX, address: str = "192.0.2.10"):
    client = app.test_client()
    client.environ_base.update({"HTTP_USER_AGENT": agent, "REMOTE_ADDR": address})
    assert sign_in(client, email).status_code == 302
    return client


def sessions_of(email: str) -> list[SignInSession]:
    user = find_user_by_email(email)
    query = select(SignInSession).filter_by(user_id=user.id).order_by(SignInSession.id)
    return list(db.session.scalars(query))


def is_signed_in(client) -> bool:
    return client.get("/").status_code == 200


def post(client, path: str):
    return client.post(path, data={"csrf_token": csrf_token(client, "/settings/sessions")})


def sign_in_emails(email: str) -> list[OutboundEmail]:
    query = select(OutboundEmail).where(
        OutboundEmail.recipient == email, OutboundEmail.dedupe_key.startswith("new-browser:")
    )
    return list(db.session.scalars(query))


@pytest.mark.parametrize(
    ("agent", "name"),
    [
        (FIREFOX, "Firefox on Windows"),
        (SAFARI, "Safari on iPhone"),
        (EDGE, "Edge on Windows"),
        (HEADLESS, "Chrome on Linux"),
        ("curl/8.5.0", "Unknown browser"),
        ("", "Unknown browser"),
        (None, "Unknown browser"),
    ],
)
def test_browsers_are_named_as_a_person_would(app, agent, name):
    with app.test_request_context():
        assert browser_name(agent) == name


def test_the_list_shows_each_browser_its_address_and_when_it_was_last_seen(app, demo):
    here = browser(app, agent=FIREFOX, address="192.0.2.10")
    browser(app, agent=SAFARI, address="198.51.100.7")
    browser(app, CLINICIAN, agent=EDGE, address="203.0.113.9")  # someone else's: not listed
    page = here.get("/settings/sessions")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Firefox on Windows <strong>(this browser)</strong>" in html
    assert "Safari on iPhone" in html and "198.51.100.7" in html and "192.0.2.10" in html
    assert "Edge" not in html and "203.0.113.9" not in html
    assert "Last seen" in html and re.search(r"\d{1,2}:\d\d\s[ap]m\sAE[DS]T", html)
    assert html.count('action="/settings/sessions/') == 3  # two End buttons and End all others
    assert "End all other sessions" in html
    assert "/settings/sessions" in here.get("/settings").get_data(as_text=True)


def test_ending_another_session_signs_that_browser_out(app, demo):
    here, laptop = browser(app), browser(app, agent=SAFARI)
    cookie = laptop.get_cookie("vcpay_session").value
    _, theirs = sessions_of(MANAGER)
    response = post(here, f"/settings/sessions/{theirs.id}/end")
    assert response.status_code == 303
    assert response.headers["Location"] == "/settings/sessions"
    assert not is_signed_in(laptop)
    copy = app.test_client()
    copy.set_cookie("vcpay_session", cookie)  # the cookie is refused wherever it is sent from
    assert copy.get("/settings/sessions").status_code == 302
    assert is_signed_in(here)
    db.session.refresh(theirs)
    assert theirs.revoked_at is not None
    actions = db.session.scalars(select(AuditEntry.action)).all()
    assert "user.session_ended" in actions


def test_ending_this_session_signs_out_here(app, demo):
    here = browser(app)
    [mine] = sessions_of(MANAGER)
    response = post(here, f"/settings/sessions/{mine.id}/end")
    assert response.status_code == 303 and response.headers["Location"] == "/sign-in"
    assert not is_signed_in(here)


def test_end_all_others_keeps_this_browser(app, demo):
    here = browser(app)
    others = [browser(app, agent=SAFARI) for _ in range(2)]
    colleague = browser(app, CLINICIAN)
    response = post(here, "/settings/sessions/end-others")
    assert response.status_code == 303
    assert is_signed_in(here)
    assert not any(is_signed_in(other) for other in others)
    assert is_signed_in(colleague)
    live = [s for s in sessions_of(MANAGER) if s.revoked_at is None]
    assert len(live) == 1


@pytest.mark.parametrize("session_id", ["theirs", "ended", "999999999", "99999999999999999999"])
def test_someone_elses_or_an_ended_session_is_not_found(app, demo, session_id):
    here, colleague = browser(app), browser(app, CLINICIAN)
    if session_id == "theirs":
        session_id = str(sessions_of(CLINICIAN)[0].id)
    elif session_id == "ended":
        old = browser(app, agent=SAFARI)
        post(old, "/sign-out")
        session_id = str(sessions_of(MANAGER)[-1].id)
    response = post(here, f"/settings/sessions/{session_id}/end")
    assert response.status_code == 404
    assert is_signed_in(colleague)


def test_ending_a_session_needs_the_csrf_token(app, demo):
    here, laptop = browser(app), browser(app, agent=SAFARI)
    _, theirs = sessions_of(MANAGER)
    assert here.post(f"/settings/sessions/{theirs.id}/end").status_code == 400
    assert here.post("/settings/sessions/end-others").status_code == 400
    assert is_signed_in(laptop)


def test_a_sign_in_from_a_new_browser_is_emailed_and_a_known_one_is_not(app, demo):
    client = browser(app, agent=SAFARI, address="198.51.100.7")
    [email] = sign_in_emails(MANAGER)
    assert "Safari on iPhone" in email.body_text
    assert "198.51.100.7" in email.body_text
    assert re.search(r"When: \d{1,2} \w{3} \d{4}, \d{1,2}:\d\d\s[ap]m\sAE[DS]T", email.body_text)
    assert "/settings/sessions" in email.body_text
    assert "change your password" in email.body_text

    post(client, "/sign-out")
    assert sign_in(client, MANAGER).status_code == 302  # the same browser: it is known
    assert len(sign_in_emails(MANAGER)) == 1
    browser(app, agent=FIREFOX)  # another browser again
    assert len(sign_in_emails(MANAGER)) == 2


def test_sign_in_emails_can_be_turned_off(app, demo):
    app.config["NEW_BROWSER_EMAILS"] = False
    browser(app)
    assert sign_in_emails(MANAGER) == []


def idle_for(email: str, minutes: int) -> None:
    for sign_in_session in sessions_of(email):
        sign_in_session.last_seen_at = utcnow() - timedelta(minutes=minutes)
    db.session.commit()


def test_an_idle_admin_is_signed_out_at_the_next_request(app, demo):
    admin = browser(app)
    idle_for(MANAGER, 31)
    response = admin.get("/payouts/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/sign-in?next=/payouts/"
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "You were signed out after 30 minutes without using vcpay" in page
    [ended] = sessions_of(MANAGER)
    assert ended.revoked_at is not None
    assert not is_signed_in(admin)


def test_an_admin_in_use_stays_signed_in_and_the_limit_follows_its_setting(app, demo):
    admin = browser(app)
    idle_for(MANAGER, 29)
    assert is_signed_in(admin)
    app.config["ADMIN_IDLE_MINUTES"] = 10
    idle_for(MANAGER, 11)
    assert not is_signed_in(admin)


def test_a_clinician_has_no_idle_limit(app, demo):
    clinician = browser(app, CLINICIAN)
    assert "idle-warning" not in clinician.get("/").get_data(as_text=True)
    idle_for(CLINICIAN, 120)
    assert is_signed_in(clinician)


def test_an_admins_pages_carry_the_idle_warning(app, demo):
    html = browser(app).get("/").get_data(as_text=True)
    assert 'data-idle-seconds="1800"' in html and 'data-warn-seconds="1680"' in html
    assert "you will be signed out in two minutes" in html
    assert "js/idle.js" in html
