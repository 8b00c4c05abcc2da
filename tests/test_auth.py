"""Sign-in and sign-out: one message for every bad credential, limits, safe redirects,
sign-ins held on the server."""

import hashlib
import time
from datetime import timedelta

import pytest
import redis
from flask import Response
from sqlalchemy import func, select

from tests.conftest import ServerLikeClient, csrf_token, sign_in
from tests.services import redis_url
from vcpay import create_app
from vcpay.audit.models import AuditEntry
from vcpay.auth.throttling import remember_device
from vcpay.calls import stream as call_stream
from vcpay.database import utcnow
from vcpay.extensions import db, limiter
from vcpay.people import models
from vcpay.people import services as people
from vcpay.people.services import find_user_by_email

MANAGER = "manager@harbourside.example"
CLINICIAN = "clinician@harbourside.example"
GENERIC = "That email and password do not match an active account."
DEVICE_COOKIE = "vcpay_device"
ATTACKER = "203.0.113.66"
OWNER = "192.0.2.10"


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


def test_attempts_on_one_account_from_one_address_are_limited(client, demo):
    here = {"REMOTE_ADDR": ATTACKER}
    for _ in range(5):
        assert sign_in(client, MANAGER, "wrong", environ_base=here).status_code == 401
    limited = sign_in(client, MANAGER, environ_base=here)
    assert limited.status_code == 429
    page = limited.get_data(as_text=True)
    assert "Too many wrong passwords for this email address from here." in page
    assert "Try again in 5 minutes." in page
    assert 0 < int(limited.headers["Retry-After"]) <= 300
    assert 'name="csrf_token"' in page  # the form is there to try again later


def test_an_attacker_elsewhere_cannot_lock_the_owner_out(app, client, demo):
    """Five wrong passwords from one address used to lock the account everywhere."""
    for _ in range(5):
        sign_in(client, MANAGER, "wrong", environ_base={"REMOTE_ADDR": ATTACKER})
    owner = app.test_client()  # a browser that never signed in before, at another address
    assert sign_in(owner, MANAGER, environ_base={"REMOTE_ADDR": OWNER}).status_code == 302
    assert owner.get("/", environ_base={"REMOTE_ADDR": OWNER}).status_code == 200


def spray(client, email: str, attempts: int, network: str = "198.51.100.") -> list[int]:
    """Wrong passwords for ``email`` from a new address every five attempts, so neither the
    per-address nor the per-account-and-address limit is ever reached."""
    return [
        sign_in(
            client, email, "wrong", environ_base={"REMOTE_ADDR": f"{network}{1 + n // 5}"}
        ).status_code
        for n in range(attempts)
    ]


def test_a_spray_from_many_addresses_cannot_stop_the_owner_on_a_known_browser(app, client, demo):
    app.config["LOGIN_NEW_DEVICE_RATE_LIMIT"] = "8 per hour"  # 30 by default; hashing is slow
    owner = app.test_client()
    assert sign_in(owner, MANAGER).status_code == 302
    sign_out(owner)

    assert spray(client, MANAGER, 12) == [401] * 8 + [429] * 4

    # A browser that never signed in to this account is held back, and told what to do.
    stranger = app.test_client()
    held = sign_in(stranger, MANAGER, environ_base={"REMOTE_ADDR": "192.0.2.99"})
    assert held.status_code == 429
    page = held.get_data(as_text=True)
    assert "from browsers it has not signed in from before" in page
    assert "If you have signed in to vcpay on another browser or computer, sign in there." in page
    assert "Try again in 1 hour." in page
    # The owner's own browser gets in with the right password, even from another address.
    assert sign_in(owner, MANAGER, environ_base={"REMOTE_ADDR": OWNER}).status_code == 302


def test_the_known_browser_cookie_names_only_accounts_that_signed_in_with_it(app, client, demo):
    app.config["LOGIN_NEW_DEVICE_RATE_LIMIT"] = "3 per hour"
    assert sign_in(client, "orgadmin@harbourside.example").status_code == 302
    cookie = client.get_cookie(DEVICE_COOKIE, path="/sign-in")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    assert "harbourside" not in cookie.value  # accounts appear as keyed digests only
    sign_out(client)
    spray(app.test_client(), MANAGER, 3)
    # Known to the org admin's account, not to the manager's: still held back.
    assert sign_in(client, MANAGER).status_code == 429


def test_a_forged_or_copied_device_cookie_is_no_way_round_the_limits(app, client, demo):
    app.config["LOGIN_NEW_DEVICE_RATE_LIMIT"] = "3 per hour"
    owner = app.test_client()
    assert sign_in(owner, MANAGER).status_code == 302
    copied = owner.get_cookie(DEVICE_COOKIE, path="/sign-in").value

    forged = app.test_client()
    forged.set_cookie(DEVICE_COOKIE, copied[:-4] + "AAAA", path="/sign-in")
    spray(forged, MANAGER, 3)
    assert sign_in(forged, MANAGER, environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 429

    thief = app.test_client()
    thief.set_cookie(DEVICE_COOKIE, copied, path="/sign-in")
    # One copy of the cookie gets five tries in all, whatever the address.
    assert spray(thief, MANAGER, 6, network="203.0.113.") == [401] * 5 + [429]


def test_the_account_limit_across_addresses_follows_its_setting(app, client, demo):
    app.config["LOGIN_NEW_DEVICE_RATE_LIMIT"] = "3 per hour"
    assert spray(client, MANAGER, 4) == [401, 401, 401, 429]


def test_with_redis_the_limits_are_counted_there_without_naming_anyone(app, client, demo):
    """Every web server sees the same counts; the keys name no email address."""
    url = redis_url()
    shared = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "RATELIMIT_STORAGE_URI": url,
            "LOGIN_NEW_DEVICE_RATE_LIMIT": "6 per hour",
        }
    )
    shared.test_client_class = ServerLikeClient
    limiter.reset()
    try:
        owner = shared.test_client()
        assert sign_in(owner, MANAGER).status_code == 302
        sign_out(owner)
        assert spray(shared.test_client(), MANAGER, 7) == [401] * 6 + [429]
        assert sign_in(shared.test_client(), MANAGER).status_code == 429
        assert sign_in(owner, MANAGER).status_code == 302
        keys = [key.decode() for key in redis.Redis.from_url(url).keys("LIMITS*")]
        assert any("sign-in:" in key for key in keys)
        assert not any("harbourside" in key for key in keys)
    finally:
        limiter.reset()
        shared.extensions["call_waker"].stop()


def test_attempts_from_one_address_are_limited_across_accounts(client, demo):
    for number in range(10):
        assert sign_in(client, f"guess{number}@harbourside.example").status_code == 401
    assert sign_in(client, MANAGER).status_code == 429


def guesses_then_the_owner(client, proxy_says: str, owner_says: str):
    """Ten wrong sign-ins forwarded for one address, then the owner's, forwarded for another."""
    for number in range(10):
        guess = sign_in(client, f"guess{number}@harbourside.example", **forwarded(proxy_says))
        assert guess.status_code == 401
    return sign_in(client, MANAGER, **forwarded(owner_says))


def forwarded(address: str) -> dict:
    return {"headers": {"X-Forwarded-For": address}}


BEHIND_ONE_PROXY = {
    "CELERY_BROKER_URL": "memory://",
    "RATELIMIT_STORAGE_URI": "memory://",
    "TRUSTED_PROXIES": 1,
}


@pytest.mark.parametrize("app_overrides", [BEHIND_ONE_PROXY])
def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_limit(client, demo):
    assert guesses_then_the_owner(client, ATTACKER, OWNER).status_code == 302
    assert sign_in(client, MANAGER, **forwarded(ATTACKER)).status_code == 429


def test_with_no_trusted_proxy_forwarded_addresses_are_ignored(client, demo):
    assert guesses_then_the_owner(client, ATTACKER, OWNER).status_code == 429


def test_successful_sign_ins_do_not_count_against_the_limit(client, demo):
    for _ in range(7):
        assert sign_in(client, MANAGER).status_code == 302
        sign_out(client)


def sign_out(client, **kw):
    token = csrf_token(client, "/")
    return client.post("/sign-out", data={"csrf_token": token}, **kw)


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
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if "vcpay_session=" in c]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_cookies_are_secure_when_served_over_https(tmp_path, monkeypatch):
    monkeypatch.setenv("VCPAY_PUBLIC_URL", "https://pay.example.org")
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite'}"})
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    response = app.test_client().get("/sign-in")
    assert "Secure" in response.headers["Set-Cookie"]
    with app.test_request_context("/sign-in", method="POST"):
        signed_in = Response()
        remember_device(signed_in, MANAGER)
    [device] = signed_in.headers.getlist("Set-Cookie")
    assert device.startswith("vcpay_device=")
    assert {"Secure", "HttpOnly", "SameSite=Lax", "Path=/sign-in"} <= set(device.split("; "))
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def signed_in_browser(app, email: str = MANAGER):
    browser = app.test_client()
    assert sign_in(browser, email).status_code == 302
    return browser


def is_signed_in(browser) -> bool:
    return browser.get("/").status_code == 200


def sign_ins_of(email: str) -> list:
    user = find_user_by_email(email)
    return list(db.session.scalars(select(models.SignInSession).filter_by(user_id=user.id)))


def test_a_cookie_copied_before_sign_out_is_refused_afterwards(app, client, demo):
    assert sign_in(client, MANAGER).status_code == 302
    copied = client.get_cookie("vcpay_session").value
    assert sign_out(client).status_code == 302

    replay = app.test_client()
    replay.set_cookie("vcpay_session", copied)
    assert replay.get("/").status_code == 302
    assert replay.get("/client-payments/").headers["Location"].startswith("/sign-in")
    [ended] = sign_ins_of(MANAGER)
    assert ended.revoked_at is not None


def test_the_browser_holds_only_a_random_id_and_the_database_only_its_hash(app, client, demo):
    sign_in(client, MANAGER)
    cookie = client.get_cookie("vcpay_session").value
    token = app.session_interface.get_signing_serializer(app).loads(cookie)["sign_in"]
    [stored] = sign_ins_of(MANAGER)
    assert len(token) >= 40 and token not in stored.token_hash
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert stored.expires_at - stored.created_at == timedelta(hours=app.config["SESSION_HOURS"])


def test_each_sign_in_is_its_own_session_and_signing_out_ends_only_that_one(app, demo):
    laptop, tablet = signed_in_browser(app), signed_in_browser(app)
    sign_out(laptop)
    assert not is_signed_in(laptop)
    assert is_signed_in(tablet)


def test_revoking_all_sessions_of_a_person_signs_every_browser_out(app, demo):
    browsers = [signed_in_browser(app) for _ in range(3)]
    colleague = signed_in_browser(app, "orgadmin@harbourside.example")
    assert people.revoke_all_sign_in_sessions(find_user_by_email(MANAGER)) == 3
    db.session.commit()
    assert not any(is_signed_in(browser) for browser in browsers)
    assert is_signed_in(colleague)
    assert sign_in(browsers[0], MANAGER).status_code == 302  # signing in again works


def test_a_new_password_signs_out_every_other_browser(app, demo):
    here, elsewhere = signed_in_browser(app), signed_in_browser(app)
    manager = find_user_by_email(MANAGER)
    [kept, _] = sorted(sign_ins_of(MANAGER), key=lambda s: s.id)
    people.set_password(manager, "a new long passphrase", keep=kept)
    db.session.commit()
    assert is_signed_in(here)
    assert not is_signed_in(elsewhere)
    assert sign_in(elsewhere, MANAGER).status_code == 401
    assert sign_in(elsewhere, MANAGER, "a new long passphrase").status_code == 302


def test_disabling_a_person_ends_their_sessions_for_good(app, demo):
    browser = signed_in_browser(app)
    people.disable_user(find_user_by_email(MANAGER))
    db.session.commit()
    assert not is_signed_in(browser)
    find_user_by_email(MANAGER).is_disabled = False  # enabled again: the old sign-in stays over
    db.session.commit()
    assert not is_signed_in(browser)


def test_a_sign_in_ends_on_the_server_after_its_hours(app, client, demo):
    sign_in(client, MANAGER)
    [session] = sign_ins_of(MANAGER)
    session.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert not is_signed_in(client)


def test_last_seen_is_written_at_most_every_few_minutes(app, client, demo):
    sign_in(client, MANAGER)
    [session] = sign_ins_of(MANAGER)
    earlier = utcnow() - timedelta(minutes=6)
    session.last_seen_at = earlier
    db.session.commit()
    assert is_signed_in(client)
    db.session.refresh(session)
    seen = session.last_seen_at
    assert seen > earlier + timedelta(minutes=5)
    assert is_signed_in(client)
    db.session.refresh(session)
    assert session.last_seen_at == seen  # not written again so soon


def test_a_call_stream_of_a_signed_out_clinician_ends_at_its_recheck(
    app, client, demo, monkeypatch
):
    monkeypatch.setattr(call_stream, "RECHECK_SECONDS", 0.2)
    monkeypatch.setattr(call_stream, "KEEPALIVE_SECONDS", 0.2)
    app.config["STREAM_POLL_SECONDS"] = 0.05
    app.config["STREAM_MAX_SECONDS"] = 60  # a stream that ended at its maximum sends no "closed"
    sign_in(client, CLINICIAN)
    clinic = db.session.scalar(select(models.Clinic).filter_by(name="Harbourside GP Clinic"))
    token = csrf_token(client, "/calls/")
    started = client.post("/calls/start", data={"csrf_token": token, "clinic_id": clinic.id})
    stream = client.get(started.location + "/events")
    chunks = iter(stream.response)
    assert next(chunks).startswith(b"retry:")

    assert sign_out(client).status_code == 302
    began = time.monotonic()
    rest = b"".join(chunks).decode()
    assert rest.endswith("event: closed\ndata: {}\n\n")
    assert time.monotonic() - began < 30
