"""Sign-in and sign-out: one message for every bad credential, limits, safe redirects."""

import pytest
from sqlalchemy import func, select

from tests.conftest import csrf_token, sign_in
from vcpay import create_app
from vcpay.audit.models import AuditEntry
from vcpay.extensions import db
from vcpay.people.services import find_user_by_email

MANAGER = "manager@harbourside.example"
GENERIC = "That email and password do not match an active account."


def audit_count(action: str) -> int:
    return db.session.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
    )


def test_sign_in_page_renders_a_form_with_csrf(client):
    page = client.get("/sign-in")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'name="csrf_token"' in html
    assert 'autocomplete="current-password"' in html


def test_pages_need_a_signed_in_user(client, demo):
    response = client.get("/client-payments/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=")


def test_sign_in_goes_home_and_is_audited(client, demo):
    response = sign_in(client, "  Manager@Harbourside.EXAMPLE ")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "Morgan Lee" in client.get("/").get_data(as_text=True)
    assert audit_count("user.signed_in") == 1
    assert find_user_by_email(MANAGER).last_signed_in_at is not None


@pytest.mark.parametrize(
    ("email", "password"),
    [
        (MANAGER, "wrong password"),
        ("nobody@harbourside.example", "vcpay-demo-2026"),
        ("disabled@harbourside.example", "vcpay-demo-2026"),
    ],
    ids=["wrong-password", "unknown-user", "disabled-user"],
)
def test_every_bad_credential_gets_the_same_message(client, demo, email, password):
    disabled = find_user_by_email(MANAGER)
    if email.startswith("disabled"):
        disabled.email = email
        disabled.is_disabled = True
        db.session.commit()
    response = sign_in(client, email, password)
    assert response.status_code == 401
    assert GENERIC in response.get_data(as_text=True)
    assert audit_count("user.signed_in") == 0
    assert client.get("/").status_code == 302  # still signed out


def test_a_disabled_user_is_signed_out_on_the_next_request(client, demo):
    assert sign_in(client, MANAGER).status_code == 302
    find_user_by_email(MANAGER).is_disabled = True
    db.session.commit()
    assert client.get("/").status_code == 302


def test_empty_fields_get_a_message_each(client, demo):
    response = client.post("/sign-in", data={"csrf_token": csrf_token(client)})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Enter your email address." in html
    assert "Enter your password." in html


def test_missing_csrf_token_is_refused_and_changes_nothing(client, demo):
    response = client.post("/sign-in", data={"email": MANAGER, "password": "vcpay-demo-2026"})
    assert response.status_code == 400
    assert "This form has expired" in response.get_data(as_text=True)
    assert audit_count("user.signed_in") == 0
    assert find_user_by_email(MANAGER).last_signed_in_at is None


def test_attempts_on_one_account_are_limited(client, demo):
    for _ in range(5):
        assert sign_in(client, MANAGER, "wrong").status_code == 401
    limited = sign_in(client, MANAGER, "vcpay-demo-2026")
    assert limited.status_code == 429
    assert "Too many attempts" in limited.get_data(as_text=True)
    assert "Retry-After" in limited.headers
    # Someone else, elsewhere, is not locked out by a person guessing this account.
    elsewhere = {"REMOTE_ADDR": "203.0.113.7"}
    assert (
        sign_in(client, "orgadmin@harbourside.example", environ_base=elsewhere).status_code == 302
    )


def test_attempts_from_one_address_are_limited_across_accounts(client, demo):
    for number in range(10):
        assert sign_in(client, f"guess{number}@harbourside.example").status_code == 401
    assert sign_in(client, MANAGER).status_code == 429


def test_successful_sign_ins_do_not_count_against_the_limit(client, demo):
    for _ in range(7):
        assert sign_in(client, MANAGER).status_code == 302
        sign_out(client)


def sign_out(client):
    token = csrf_token(client, "/")
    return client.post("/sign-out", data={"csrf_token": token})


@pytest.mark.parametrize(
    ("next_page", "expected"),
    [
        ("/client-payments/", "/client-payments/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_only_leads_back_into_vcpay(client, demo, next_page, expected):
    response = sign_in(client, MANAGER, next_page=next_page)
    assert response.headers["Location"] == expected


def test_sign_out_needs_post_and_csrf(client, demo):
    sign_in(client, MANAGER)
    assert client.get("/sign-out").status_code == 405
    assert client.post("/sign-out").status_code == 400
    assert client.get("/").status_code == 200  # still signed in
    response = sign_out(client)
    assert response.status_code == 302
    assert client.get("/").status_code == 302
    assert audit_count("user.signed_out") == 1


def test_session_cookie_flags(client, demo):
    response = sign_in(client, MANAGER)
    cookie = response.headers["Set-Cookie"]
    assert "vcpay_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_cookies_are_secure_when_served_over_https(tmp_path, monkeypatch):
    monkeypatch.setenv("VCPAY_PUBLIC_URL", "https://pay.example.org")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    response = app.test_client().get("/sign-in")
    assert "Secure" in response.headers["Set-Cookie"]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
