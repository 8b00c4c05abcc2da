"""Passwords: NIST SP 800-63B rules, changing one (the old one needed), "forgot password" that
tells nobody whether an address has an account, a reset link that works once for an hour, and
every other sign-in ended by a new password."""

import re
import time
from types import SimpleNamespace

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import func, select

from tests.conftest import csrf_token, sign_in
from vcpay.auth import passwords
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail
from vcpay.people.demo import DEMO_PASSWORD
from vcpay.people.services import authenticate, find_user_by_email
from vcpay.redaction import mask_url

# What these tests check happens before or beside any query: SQLite alone runs them.
pytestmark = pytest.mark.any_database

MANAGER = "manager@harbourside.example"
CLINICIAN = "clinician@harbourside.example"
NEW = "otter kettle ribbon lantern"
SESSION = "vcpay_session"
FORGOT_ANSWER = "If %s belongs to an active vcpay account, we have emailed it a link"
CSRF_VALUE = re.compile(r'(name="csrf_token" type="hidden" value=")[^"]+')
LINK = re.compile(r"http://[^\s]+/reset-password/([^\s/]+)")


def change(client, current=DEMO_PASSWORD, new=NEW, again=None):
    token = csrf_token(client, "/settings/password")
    return client.post(
        "/settings/password",
        data={
            "csrf_token": token,
            "current_password": current,
            "new_password": new,
            "confirm": new if again is None else again,
        },
    )


def forgot(client, email):
    token = csrf_token(client, "/forgot-password")
    return client.post("/forgot-password", data={"csrf_token": token, "email": email})


def emails() -> list[OutboundEmail]:
    db.session.rollback()
    return list(db.session.scalars(select(OutboundEmail).order_by(OutboundEmail.id)))


def reset_link_token(email: OutboundEmail) -> str:
    match = LINK.search(email.body_text)
    assert match, email.body_text
    return match.group(1)


def reset(client, token, new=NEW, again=None):
    csrf = csrf_token(client, f"/reset-password/{token}")
    return client.post(
        f"/reset-password/{token}",
        data={"csrf_token": csrf, "new_password": new, "confirm": new if again is None else again},
    )


def copied_browser(app, client):
    """Another browser holding a copy of ``client``'s session cookie."""
    copy = app.test_client()
    copy.set_cookie(SESSION, client.get_cookie(SESSION).value)
    return copy


def signed_in_browser(app, email=MANAGER, password=DEMO_PASSWORD):
    browser = app.test_client()
    assert sign_in(browser, email, password).status_code == 302
    assert browser.get("/settings").status_code == 200
    return browser


# The rules.


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short pass", passwords.TOO_SHORT),
        ("qwerty123456", passwords.TOO_COMMON),  # on the list as it is
        ("Password2026!", passwords.TOO_COMMON),  # a common one with digits and symbols added
        ("aaaaaaaaaaaaaaa", passwords.TOO_COMMON),
        ("abcdabcdabcdabcd", passwords.TOO_COMMON),
        (NEW, None),
        ("ľubovoľné heslo s diakritikou", None),  # any characters: no composition rules
        ("alllowercaseletters", None),
    ],
)
def test_the_rules_are_length_and_the_common_list_only(app, password, problem):
    assert passwords.password_problem(password) == (None if problem is None else str(problem))


def test_the_common_list_ships_in_the_package(app):
    listed = passwords.common_passwords()
    assert len(listed) > 10_000
    assert {"password", "123456", "qwerty123456", "iloveyou"} <= listed


# Changing a password.


def test_a_change_needs_the_current_password(app, client, demo):
    assert sign_in(client, MANAGER).status_code == 302
    refused = change(client, current="not my password at all")
    assert refused.status_code == 400
    assert "That is not your current password." in refused.get_data(as_text=True)
    assert authenticate(MANAGER, DEMO_PASSWORD) is not None
    assert authenticate(MANAGER, NEW) is None


@pytest.mark.parametrize(
    ("new", "again", "message"),
    [
        ("too short", None, "Use at least 12 characters."),
        ("password123456", None, "That password is one of the most common ones"),
        (NEW, NEW + " typo", "The two new passwords are not the same."),
    ],
)
def test_a_weak_or_mistyped_new_password_is_refused_with_a_reason(
    app, client, demo, new, again, message
):
    assert sign_in(client, MANAGER).status_code == 302
    refused = change(client, new=new, again=again)
    assert refused.status_code == 400
    assert message in refused.get_data(as_text=True)
    assert authenticate(MANAGER, DEMO_PASSWORD) is not None


def test_a_change_keeps_this_browser_and_signs_out_every_other(app, client, demo):
    assert sign_in(client, MANAGER).status_code == 302
    copied = copied_browser(app, client)  # a copy of this very cookie, taken before
    laptop = signed_in_browser(app)
    clinician = signed_in_browser(app, CLINICIAN)

    changed = change(client)
    assert changed.status_code == 303
    assert changed.headers["Location"] == "/settings"
    assert client.get("/settings").status_code == 200  # this browser stays signed in
    assert laptop.get("/settings").status_code == 302  # every other is signed out
    assert clinician.get("/settings").status_code == 200  # other people are not touched
    # A copy of this browser's own cookie names the sign-in that lives on.
    assert copied.get("/settings").status_code == 200
    assert sign_in(app.test_client(), MANAGER, DEMO_PASSWORD).status_code == 401
    assert sign_in(app.test_client(), MANAGER, NEW).status_code == 302


def test_a_cookie_copied_elsewhere_before_a_change_is_refused_after_it(app, client, demo):
    laptop = signed_in_browser(app)
    stolen = copied_browser(app, laptop)
    assert stolen.get("/settings").status_code == 200
    assert sign_in(client, MANAGER).status_code == 302
    assert change(client).status_code == 303
    assert stolen.get("/settings").status_code == 302
    assert laptop.get("/settings").status_code == 302


def test_changing_needs_a_sign_in(client, demo):
    response = client.get("/settings/password")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=")


def test_settings_links_to_the_change_and_sign_in_to_forgot(client, demo):
    assert 'href="/forgot-password"' in client.get("/sign-in").get_data(as_text=True)
    assert sign_in(client, MANAGER).status_code == 302
    assert 'href="/settings/password"' in client.get("/settings").get_data(as_text=True)


# Forgot password.


def comparable(page: str) -> str:
    return CSRF_VALUE.sub(r"\1", page)


def test_forgot_answers_alike_for_known_unknown_and_disabled_and_emails_only_the_known(
    app, client, demo
):
    disabled = find_user_by_email(CLINICIAN)
    disabled.is_disabled = True
    db.session.commit()
    known = forgot(client, MANAGER)
    unknown = forgot(client, "nobody@harbourside.example")
    off = forgot(client, CLINICIAN)
    assert known.status_code == unknown.status_code == off.status_code == 200
    pages = [comparable(r.get_data(as_text=True)) for r in (known, unknown, off)]
    assert FORGOT_ANSWER % MANAGER in pages[0]
    assert pages[0].replace(MANAGER, "X") == pages[1].replace("nobody@harbourside.example", "X")
    assert pages[0].replace(MANAGER, "X") == pages[2].replace(CLINICIAN, "X")
    [email] = emails()
    assert email.recipient == MANAGER
    assert "Reset your vcpay password" in email.subject
    assert reset_link_token(email)


def test_forgot_is_limited_per_email_address_and_the_limit_tells_nothing(app, client, demo):
    pages = {}
    for email in (MANAGER, "nobody@harbourside.example"):
        assert [forgot(client, email).status_code for _ in range(3)] == [200] * 3
        limited = forgot(client, email)
        assert limited.status_code == 429
        pages[email] = comparable(limited.get_data(as_text=True)).replace(email, "X")
        assert "Too many requests for a new password" in pages[email]
    assert pages[MANAGER] == pages["nobody@harbourside.example"]
    assert len(emails()) == 3


def test_forgot_is_limited_per_address(app, demo):
    here = {"REMOTE_ADDR": "203.0.113.9"}
    browser = app.test_client()
    token = csrf_token(browser, "/forgot-password")
    statuses = [
        browser.post(
            "/forgot-password",
            data={"csrf_token": token, "email": f"someone{n}@example.org"},
            environ_base=here,
        ).status_code
        for n in range(11)
    ]
    assert statuses == [200] * 10 + [429]


# The reset link.


def test_the_link_sets_a_password_once_and_ends_every_sign_in(app, client, demo):
    laptop = signed_in_browser(app)
    forgot(client, MANAGER)
    token = reset_link_token(emails()[0])

    page = client.get(f"/reset-password/{token}")
    assert page.status_code == 200
    assert MANAGER in page.get_data(as_text=True)
    done = reset(client, token)
    assert done.status_code == 303
    assert done.headers["Location"] == "/sign-in"
    assert laptop.get("/settings").status_code == 302  # signed out everywhere
    assert sign_in(app.test_client(), MANAGER, DEMO_PASSWORD).status_code == 401
    assert sign_in(app.test_client(), MANAGER, NEW).status_code == 302

    used = reset(client, token, new="a different passphrase entirely")
    assert used.status_code == 404
    assert "expired or was already used" in used.get_data(as_text=True)
    assert client.get(f"/reset-password/{token}").status_code == 404
    assert sign_in(app.test_client(), MANAGER, NEW).status_code == 302


def test_a_weak_password_on_the_reset_page_keeps_the_link_usable(app, client, demo):
    forgot(client, MANAGER)
    token = reset_link_token(emails()[0])
    refused = reset(client, token, new="password")
    assert refused.status_code == 400
    assert "Use at least 12 characters." in refused.get_data(as_text=True)
    assert reset(client, token).status_code == 303


def test_a_link_is_dead_after_an_hour(app, client, demo, monkeypatch):
    user = find_user_by_email(MANAGER)
    fresh = passwords.reset_token(user)
    hour_ago = int(time.time()) - passwords.RESET_SECONDS - 5
    with monkeypatch.context() as frozen:
        frozen.setattr(TimestampSigner, "get_timestamp", lambda signer: hour_ago)
        old = passwords.reset_token(user)
    assert old != fresh
    expired = client.get(f"/reset-password/{old}")
    assert expired.status_code == 404
    assert "expired or was already used" in expired.get_data(as_text=True)
    csrf = csrf_token(client, "/forgot-password")
    posted = client.post(
        f"/reset-password/{old}", data={"csrf_token": csrf, "new_password": NEW, "confirm": NEW}
    )
    assert posted.status_code == 404
    assert authenticate(MANAGER, DEMO_PASSWORD) is not None
    # One made just inside the hour still works.
    with monkeypatch.context() as frozen:
        frozen.setattr(TimestampSigner, "get_timestamp", lambda signer: hour_ago + 60)
        recent = passwords.reset_token(user)
    assert client.get(f"/reset-password/{recent}").status_code == 200


@pytest.mark.parametrize(
    ("token", "status"),
    [
        ("nonsense", 404),
        ("a" * 5000, 404),
        ("eyJ1c2VyIjoxfQ.abc.def", 404),
        ("%F0%9F%92%A9", 404),
        ("x\x00y", 400),  # refused before any view, as on every page
    ],
)
def test_forged_or_broken_links_are_refused_without_an_error(client, demo, token, status):
    response = client.get(f"/reset-password/{token}")
    assert response.status_code == status
    assert "expired or was already used" in response.get_data(as_text=True) or status == 400


def test_a_link_for_someone_disabled_since_is_refused(app, client, demo):
    forgot(client, MANAGER)
    token = reset_link_token(emails()[0])
    find_user_by_email(MANAGER).is_disabled = True
    db.session.commit()
    assert client.get(f"/reset-password/{token}").status_code == 404


def test_a_change_of_password_kills_an_earlier_link(app, client, demo):
    forgot(client, MANAGER)
    token = reset_link_token(emails()[0])
    assert sign_in(client, MANAGER).status_code == 302
    assert change(client).status_code == 303
    assert client.get(f"/reset-password/{token}").status_code == 404


def test_reset_links_are_hidden_in_logs(app):
    assert mask_url("/reset-password/abc.def.ghi?x=1") == "/reset-password/[hidden]?x=1"


def test_the_forgot_form_needs_its_csrf_token(client, demo):
    response = client.post("/forgot-password", data={"email": MANAGER})
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(OutboundEmail)) == 0


def test_of_two_resets_racing_with_one_link_only_the_first_sets_the_password(app, demo):
    """Both requests checked the link before either wrote: the guarded update lets one win."""
    first = find_user_by_email(MANAGER)
    token = passwords.reset_token(first)
    assert passwords.user_for_reset_token(token) is first
    stale_hash = first.password_hash
    assert passwords.reset_password(first, NEW)
    db.session.commit()
    # The second request still holds the person as it read them, with the old hash.
    second = SimpleNamespace(id=first.id, password_hash=stale_hash)
    assert not passwords.reset_password(second, "the second racer's passphrase")
    db.session.rollback()
    assert authenticate(MANAGER, NEW) is not None
    assert passwords.user_for_reset_token(token) is None


def test_wrong_current_passwords_are_limited_as_sign_ins_are(app, client, demo):
    assert sign_in(client, MANAGER).status_code == 302
    assert [change(client, current=f"guess number {n}").status_code for n in range(5)] == [400] * 5
    limited = change(client)
    assert limited.status_code == 429
    assert authenticate(MANAGER, DEMO_PASSWORD) is not None
    other = app.test_client()  # another person is not held back
    assert sign_in(other, CLINICIAN).status_code == 302
    assert change(other).status_code == 303
