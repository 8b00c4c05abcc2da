"""Two-factor sign-in: admins enrol before anything else, codes are accepted once, wrong codes
are limited, recovery codes are spent, clinicians choose, admins reset others, and the demo's
people (on the local demo only) are not asked."""

import re
import time

import pyotp
import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select

from tests import factories
from tests.conftest import csrf_token, sign_in
from vcpay.audit.models import AuditEntry
from vcpay.auth import two_factor
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail
from vcpay.people.models import ClinicRole, RecoveryCode, SignInSession, User
from vcpay.people.services import add_clinic_role, set_password

PASSWORD = factories.PASSWORD
SESSION = "vcpay_session"
SECRET_SHOWN = re.compile(r'<code class="secret">([A-Z2-7 ]+)</code>')
CODE_SHOWN = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")


@pytest.fixture
def people(app):
    """Two organisations; every person here must use two-factor if they are an admin (none
    is exempt, as nobody is outside the local demo)."""
    riverside = factories.organisation("Riverside Care", "Riverside GP", "Riverside Dental")
    gp, dental = riverside.clinics
    other = factories.organisation("Hillside Health", "Hillside GP")
    found = {
        "org_admin": factories.org_admin(
            "org@riverside.example", riverside, two_factor_exempt=False
        ),
        "gp_admin": factories.clinic_person(
            "gpadmin@riverside.example", gp, ClinicRole.CLINIC_ADMIN, two_factor_exempt=False
        ),
        "dental_admin": factories.clinic_person(
            "dentaladmin@riverside.example", dental, ClinicRole.CLINIC_ADMIN,
            two_factor_exempt=False,
        ),
        "clinician": factories.clinic_person(
            "clinician@riverside.example", gp, ClinicRole.CLINICIAN, two_factor_exempt=False
        ),
        "other_admin": factories.org_admin("org@hillside.example", other, two_factor_exempt=False),
    }  # fmt: skip
    db.session.commit()
    return found


def code_for(secret: str, steps_ahead: int = 0) -> str:
    """The code an app shows ``steps_ahead`` 30-second steps from now."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def enrolled(user: User) -> tuple[str, list[str]]:
    """Turns two-factor on for ``user`` as the enrolment page does: the secret and the codes."""
    secret = two_factor.new_secret()
    codes = two_factor.turn_on(user, secret, code_for(secret, -1))
    db.session.commit()
    assert codes is not None
    return secret, codes


def post(client, path: str, page: str, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, page), **data})


def is_signed_in(client) -> bool:
    return client.get("/settings").status_code == 200


def give_code(client, code: str):
    return post(client, "/sign-in/two-factor", "/sign-in", code=code)


def password_passed(app, user: User):
    browser = app.test_client()
    response = sign_in(browser, user.email, PASSWORD)
    assert response.status_code == 302
    return browser, response


# Enrolment.


def test_an_admin_enrols_at_sign_in_before_reaching_any_page(app, people):
    admin = people["org_admin"]
    browser, response = password_passed(app, admin)
    assert response.headers["Location"] == "/sign-in/two-factor/enrol"
    for page in ("/", "/settings", "/settings/two-factor", "/audit/"):
        assert browser.get(page).status_code == 302  # not signed in: to the sign-in page
    assert not db.session.scalars(select(SignInSession)).all()

    page = browser.get("/sign-in/two-factor/enrol")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "<svg" in text and "<path" in text  # the QR code, drawn on the server
    secret = SECRET_SHOWN.search(text)[1].replace(" ", "")
    assert browser.get("/sign-in/two-factor/enrol").status_code == 200  # the same secret again

    wrong = post(browser, "/sign-in/two-factor/enrol", "/sign-in/two-factor/enrol", code="12345x")
    assert wrong.status_code == 400
    assert "That code is not right" in wrong.get_data(as_text=True)
    assert not is_signed_in(browser)

    done = post(
        browser, "/sign-in/two-factor/enrol", "/sign-in/two-factor/enrol", code=code_for(secret)
    )
    assert done.status_code == 303
    assert done.headers["Location"].startswith("/settings/two-factor/recovery-codes")
    shown = browser.get(done.headers["Location"])
    codes = CODE_SHOWN.findall(shown.get_data(as_text=True))
    assert len(set(codes)) == 10
    # Shown once: the page sends the person on the next time.
    assert browser.get("/settings/two-factor/recovery-codes").status_code == 302
    assert is_signed_in(browser)

    db.session.refresh(admin)
    assert admin.two_factor_secret == secret and admin.two_factor_enabled_at is not None
    stored = db.session.scalars(select(RecoveryCode.code_hash).filter_by(user_id=admin.id)).all()
    assert len(stored) == 10
    assert not {c.replace("-", "") for c in codes} & set(stored)  # only keyed hashes
    # The secret is not shown again after enrolment.
    assert secret not in browser.get("/settings/two-factor").get_data(as_text=True)
    assert db.session.scalar(
        select(AuditEntry).filter_by(action="user.two_factor_enabled", object_id=str(admin.id))
    )


def test_a_person_made_admin_while_signed_in_is_asked_at_the_next_sign_in(app, people):
    clinician = people["clinician"]
    browser, response = password_passed(app, clinician)
    assert response.headers["Location"] == "/"
    assert is_signed_in(browser)
    gp = clinician.clinic_memberships[0].clinic
    add_clinic_role(clinician, gp, ClinicRole.CLINIC_ADMIN)
    db.session.commit()
    assert is_signed_in(browser)  # not interrupted
    _again, response = password_passed(app, clinician)
    assert response.headers["Location"] == "/sign-in/two-factor/enrol"


# Signing in with a code.


def test_sign_in_with_a_code_and_no_code_accepted_twice(app, people):
    admin = people["org_admin"]
    secret, _codes = enrolled(admin)
    browser, response = password_passed(app, admin)
    assert response.headers["Location"] == "/sign-in/two-factor"
    assert not is_signed_in(browser)
    code = code_for(secret, 1)  # enrolment used the step before now, and steps go forward
    accepted = give_code(browser, code)
    assert accepted.status_code == 303 and accepted.headers["Location"] == "/"
    assert is_signed_in(browser)

    other, _response = password_passed(app, admin)
    replay = give_code(other, code)
    assert replay.status_code == 400
    assert "used already" in replay.get_data(as_text=True)
    assert give_code(other, code_for(secret)).status_code == 400  # an earlier step
    assert not is_signed_in(other)


def test_wrong_codes_are_limited_per_account(app, people):
    admin = people["org_admin"]
    secret, _codes = enrolled(admin)
    browser, _response = password_passed(app, admin)
    wrong = [give_code(browser, "000000" if n % 2 else "abc").status_code for n in range(5)]
    assert wrong == [400] * 5
    limited = give_code(browser, code_for(secret, 1))
    assert limited.status_code == 429
    assert "Too many wrong codes" in limited.get_data(as_text=True)
    assert not is_signed_in(browser)
    # Another browser of the same account is held back too; another account is not.
    again, _response = password_passed(app, admin)
    assert give_code(again, code_for(secret, 1)).status_code == 429
    clinician = people["clinician"]
    clinician_secret, _codes = enrolled(clinician)
    theirs, _response = password_passed(app, clinician)
    assert give_code(theirs, code_for(clinician_secret, 1)).status_code == 303


def test_a_recovery_code_signs_in_once(app, people):
    admin = people["gp_admin"]
    _secret, codes = enrolled(admin)
    browser, _response = password_passed(app, admin)
    used = give_code(browser, codes[3].upper().replace("-", " "))  # typed loosely
    assert used.status_code == 303
    home = browser.get("/").get_data(as_text=True)
    assert "You have 9 recovery codes left." in home
    entry = db.session.scalar(select(AuditEntry).filter_by(action="user.recovery_code_used"))
    assert entry.object_id == str(admin.id) and entry.details["left"] == 9

    again, _response = password_passed(app, admin)
    assert give_code(again, codes[3]).status_code == 400
    assert not is_signed_in(again)
    assert give_code(again, codes[4]).status_code == 303


@pytest.mark.parametrize(
    "typed",
    [
        "\uff11\uff12\uff13\uff14\uff15\uff16",
        "١٢٣٤٥٦",
        "x" * 5000,
        "12345\u00006",
        "'; DROP TABLE users; --",
        "",
    ],
)
def test_odd_codes_are_refused_plainly(app, people, typed):
    enrolled(people["org_admin"])
    browser, _response = password_passed(app, people["org_admin"])
    response = give_code(browser, typed)
    assert response.status_code == 400
    assert not is_signed_in(browser)


# The marker between the password and the code.


def test_the_marker_is_spent_by_signing_in(app, people):
    admin = people["org_admin"]
    secret, _codes = enrolled(admin)
    browser, _response = password_passed(app, admin)
    copy = app.test_client()
    copy.set_cookie(SESSION, browser.get_cookie(SESSION).value)  # taken before the code
    assert give_code(browser, code_for(secret, 1)).status_code == 303
    after = copy.get("/sign-in/two-factor")
    assert after.status_code == 302 and after.headers["Location"] == "/sign-in"
    assert "took too long or was already used" in copy.get("/sign-in").get_data(as_text=True)


def test_the_marker_lasts_five_minutes(app, people, monkeypatch):
    admin = people["org_admin"]
    secret, _codes = enrolled(admin)
    six_minutes_ago = int(time.time()) - two_factor.MARKER_SECONDS - 60
    with monkeypatch.context() as frozen:
        frozen.setattr(TimestampSigner, "get_timestamp", lambda signer: six_minutes_ago)
        browser, _response = password_passed(app, admin)
    page = browser.get("/sign-in/two-factor")
    assert page.status_code == 302 and page.headers["Location"] == "/sign-in"
    # Just inside the five minutes, it still works.
    with monkeypatch.context() as frozen:
        frozen.setattr(TimestampSigner, "get_timestamp", lambda signer: int(time.time()) - 240)
        browser, _response = password_passed(app, admin)
    assert give_code(browser, code_for(secret, 1)).status_code == 303


def test_the_marker_is_tied_to_the_password(app, people):
    admin = people["org_admin"]
    secret, _codes = enrolled(admin)
    browser, _response = password_passed(app, admin)
    set_password(admin, "a brand new passphrase here")
    db.session.commit()
    refused = give_code(browser, code_for(secret, 1))
    assert refused.status_code == 302 and refused.headers["Location"] == "/sign-in"
    assert not is_signed_in(browser)


# Clinicians choose; admins cannot turn it off.


def test_a_clinician_turns_two_factor_on_and_off(app, people):
    clinician = people["clinician"]
    browser, _response = password_passed(app, clinician)
    assert is_signed_in(browser)
    settings = browser.get("/settings").get_data(as_text=True)
    assert 'href="/settings/two-factor"' in settings
    assert "Two-factor sign-in is off." in browser.get("/settings/two-factor").get_data(
        as_text=True
    )
    page = browser.get("/settings/two-factor/enrol").get_data(as_text=True)
    secret = SECRET_SHOWN.search(page)[1].replace(" ", "")
    done = post(
        browser, "/settings/two-factor/enrol", "/settings/two-factor/enrol", code=code_for(secret)
    )
    assert done.status_code == 303
    assert (
        len(CODE_SHOWN.findall(browser.get(done.headers["Location"]).get_data(as_text=True))) == 10
    )

    later, response = password_passed(app, clinician)
    assert response.headers["Location"] == "/sign-in/two-factor"
    assert give_code(later, code_for(secret, 1)).status_code == 303

    page = "/settings/two-factor"
    wrong = post(later, "/settings/two-factor/turn-off", page, password="not my password")
    assert wrong.status_code == 400
    assert "That is not your current password." in wrong.get_data(as_text=True)
    off = post(later, "/settings/two-factor/turn-off", page, password=PASSWORD)
    assert off.status_code == 303
    db.session.refresh(clinician)
    assert clinician.two_factor_secret is None and clinician.two_factor_enabled_at is None
    assert not db.session.scalars(select(RecoveryCode).filter_by(user_id=clinician.id)).all()
    _browser, response = password_passed(app, clinician)
    assert response.headers["Location"] == "/"


def test_an_admin_cannot_turn_it_off_but_makes_new_recovery_codes(app, people):
    admin = people["org_admin"]
    secret, old_codes = enrolled(admin)
    browser, _response = password_passed(app, admin)
    assert give_code(browser, code_for(secret, 1)).status_code == 303
    page = browser.get("/settings/two-factor").get_data(as_text=True)
    assert "turn-off" not in page and "data-confirm" in page
    refused = post(
        browser, "/settings/two-factor/turn-off", "/settings/sessions", password=PASSWORD
    )
    assert refused.status_code == 403
    db.session.refresh(admin)
    assert admin.two_factor_enabled

    made = post(browser, "/settings/two-factor/recovery-codes", "/settings/two-factor")
    assert made.status_code == 303
    new_codes = CODE_SHOWN.findall(browser.get(made.headers["Location"]).get_data(as_text=True))
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    other, _response = password_passed(app, admin)
    assert give_code(other, old_codes[0]).status_code == 400
    assert give_code(other, new_codes[0]).status_code == 303


# An admin's reset.


def reset(client, person: User):
    return post(client, f"/people/{person.id}/two-factor/reset", "/settings/sessions")


def signed_in_admin(app, admin: User):
    secret, _codes = enrolled(admin)
    browser, _response = password_passed(app, admin)
    assert give_code(browser, code_for(secret, 1)).status_code == 303
    return browser


def test_an_admin_resets_two_factor_within_their_scope_only(app, people):
    org_admin = signed_in_admin(app, people["org_admin"])
    gp_admin = signed_in_admin(app, people["gp_admin"])
    dental_admin = signed_in_admin(app, people["dental_admin"])
    other_admin = signed_in_admin(app, people["other_admin"])
    clinician = people["clinician"]
    clinician_browser = signed_in_admin(app, clinician)  # signs anyone in with a code

    assert reset(other_admin, clinician).status_code == 404  # another organisation
    assert reset(dental_admin, clinician).status_code == 404  # another clinic
    assert reset(gp_admin, people["org_admin"]).status_code == 404  # above a clinic admin
    assert reset(org_admin, people["org_admin"]).status_code == 403  # oneself
    assert reset(org_admin, User(id=987654)).status_code == 404
    db.session.refresh(clinician)
    assert clinician.two_factor_enabled

    done = reset(gp_admin, clinician)
    assert done.status_code == 303
    db.session.refresh(clinician)
    assert clinician.two_factor_secret is None and clinician.two_factor_enabled_at is None
    assert not db.session.scalars(select(RecoveryCode).filter_by(user_id=clinician.id)).all()
    live = select(SignInSession).filter_by(user_id=clinician.id, revoked_at=None)
    assert not db.session.scalars(live).all()
    assert not is_signed_in(clinician_browser)
    email = db.session.scalar(select(OutboundEmail).filter_by(recipient=clinician.email))
    assert "reset the two-factor sign-in" in email.body_text
    entry = db.session.scalar(select(AuditEntry).filter_by(action="user.two_factor_reset"))
    assert entry.object_id == str(clinician.id)
    assert entry.actor_id == people["gp_admin"].id
    gp = clinician.clinic_memberships[0].clinic
    assert (entry.organisation_id, entry.clinic_id) == (gp.organisation_id, gp.id)  # on its page

    # An organisation admin resets an admin of one of its clinics; at their next sign-in they
    # enrol again.
    assert reset(org_admin, people["dental_admin"]).status_code == 303
    assert not is_signed_in(dental_admin)
    _browser, response = password_passed(app, people["dental_admin"])
    assert response.headers["Location"] == "/sign-in/two-factor/enrol"


def test_a_clinician_may_not_reset_anyone(app, people):
    clinician = people["clinician"]
    browser, _response = password_passed(app, clinician)
    assert reset(browser, people["gp_admin"]).status_code == 403
    assert reset(browser, people["org_admin"]).status_code == 404


def test_a_reset_needs_its_csrf_token(app, people):
    gp_admin = signed_in_admin(app, people["gp_admin"])
    enrolled(people["clinician"])
    refused = gp_admin.post(f"/people/{people['clinician'].id}/two-factor/reset")
    assert refused.status_code == 400
    db.session.refresh(people["clinician"])
    assert people["clinician"].two_factor_enabled


# The demo.


def test_the_demo_people_are_not_asked_on_the_local_demo(app, client, demo):
    page = client.get("/sign-in").get_data(as_text=True)
    assert "This is the local demo" in page
    response = sign_in(client, "manager@harbourside.example")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert is_signed_in(client)


def test_nobody_is_exempt_away_from_the_local_demo(app, demo):
    manager = db.session.scalar(select(User).filter_by(email="manager@harbourside.example"))
    assert manager.two_factor_exempt and not two_factor.is_required(manager)
    app.config["PUBLIC_URL"] = "https://vcpay.example.org"
    assert two_factor.is_required(manager) and two_factor.must_enrol(manager)
    app.config["PUBLIC_URL"] = "http://127.0.0.1:5000"
    app.config["ENVIRONMENT"] = "production"
    assert two_factor.is_required(manager)


@pytest.mark.parametrize("user_id", ["0", "99999999999999999999", "-1", "1e3"])
def test_a_reset_of_nobody_is_not_found(app, people, user_id):
    org_admin = signed_in_admin(app, people["org_admin"])
    response = post(org_admin, f"/people/{user_id}/two-factor/reset", "/settings/sessions")
    assert response.status_code == 404


def test_the_team_pages_offer_the_reset_for_people_with_two_factor_on(app, people):
    org_admin = signed_in_admin(app, people["org_admin"])
    gp = people["clinician"].clinic_memberships[0].clinic
    organisation_id, clinic_page = gp.organisation_id, f"/clinics/{gp.id}/team"
    reset_of = lambda person: f"/people/{person.id}/two-factor/reset"  # noqa: E731
    page = org_admin.get(clinic_page).get_data(as_text=True)
    assert reset_of(people["clinician"]) not in page  # two-factor is off: nothing to reset
    enrolled(people["clinician"])
    page = org_admin.get(clinic_page).get_data(as_text=True)
    assert f'action="{reset_of(people["clinician"])}?next=' in page
    done = post(org_admin, f"{reset_of(people['clinician'])}?next={clinic_page}", clinic_page)
    assert done.status_code == 303 and done.location == clinic_page
    team = org_admin.get(f"/organisations/{organisation_id}/team").get_data(as_text=True)
    assert reset_of(people["org_admin"]) not in team  # never one's own
