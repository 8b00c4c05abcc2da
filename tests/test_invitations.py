"""Invitations: an emailed link that works once, for a month; sent again, the old link dies;
withdrawn or expired, it says so; an address with an account gets the role added."""

import re
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import func, select

from sandbox.mail import start_mail_catcher
from tests.conftest import csrf_token, sign_in
from tests.test_form_fields import problems as form_problems
from vcpay.audit.models import AuditEntry
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail
from vcpay.mail.tasks import send_email
from vcpay.people.demo import DEMO_PASSWORD
from vcpay.people.models import ClinicMembership, Organisation, User
from vcpay.people.services import authenticate, find_user_by_email
from vcpay.teams import invitations
from vcpay.teams.models import Invitation

MANAGER = "manager@harbourside.example"
CLINIC_ADMIN = "clinicadmin@harbourside.example"
CLINICIAN = "clinician@harbourside.example"
NEW = "otter kettle ribbon lantern"
LINK = re.compile(r"http://[^\s]+/invitations/([^\s/]+)")


@pytest.fixture
def app_overrides() -> dict:
    return {
        "CELERY_BROKER_URL": "memory://",
        "RATELIMIT_STORAGE_URI": "memory://",
        "LOGIN_RATE_LIMIT": "5 per minute",
    }


def emails() -> list[OutboundEmail]:
    db.session.rollback()
    return list(db.session.scalars(select(OutboundEmail).order_by(OutboundEmail.id)))


def link_token(email: OutboundEmail) -> str:
    match = LINK.search(email.body_text)
    assert match, email.body_text
    return match.group(1)


def admin_browser(app, email=MANAGER):
    browser = app.test_client()
    assert sign_in(browser, email).status_code == 302
    return browser


def gp_and_physio(demo: Organisation):
    return demo.clinics[0], demo.clinics[1]


def invite_on_page(browser, demo, email, role="clinician", clinic=None):
    page = f"/organisations/{demo.id}/team"
    return browser.post(
        f"/organisations/{demo.id}/team/invitations",
        data={
            "csrf_token": csrf_token(browser, page),
            "email": email,
            "role": role,
            "clinic": str(clinic.id) if clinic else "",
        },
    )


def accept(client, token, name="Robin Nguyen", new=NEW, again=None):
    csrf = csrf_token(client, f"/invitations/{token}")
    return client.post(
        f"/invitations/{token}",
        data={"csrf_token": csrf, "name": name, "new_password": new, "confirm": again or new},
    )


def enrol_as_new_admin(client, accepted) -> None:
    """A new admin sets up two-factor sign-in before their first page (tests/test_two_factor.py):
    after ``accepted``, the enrolment page; a code from the key it shows signs them in."""
    assert accepted.status_code == 303 and accepted.location == "/sign-in/two-factor/enrol"
    enrol = client.get(accepted.location).get_data(as_text=True)
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', enrol)[1].replace(" ", "")
    csrf = csrf_token(client, accepted.location)
    code = pyotp.TOTP(secret).now()
    done = client.post(accepted.location, data={"csrf_token": csrf, "code": code})
    assert done.status_code == 303


def actions() -> list[str]:
    db.session.rollback()
    return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_an_invitation_is_emailed_followed_and_accepted_once(app, demo):
    gp, _physio = gp_and_physio(demo)
    admin = admin_browser(app)
    sent = invite_on_page(admin, demo, "  Robin@Example.org ", "clinician", gp)
    assert sent.status_code == 303, sent.get_data(as_text=True)
    email = emails()[-1]
    assert email.recipient == "robin@example.org"
    body = email.body_text
    for fact in ("Harbourside Health", gp.name, "clinician", "Morgan Lee", "works once, until"):
        assert fact in body, body
    expiry = db.session.scalar(select(Invitation)).expires_at
    assert timedelta(days=29, hours=23) < expiry - utcnow() <= timedelta(days=30)

    newcomer = app.test_client()
    token = link_token(email)
    shown = newcomer.get(f"/invitations/{token}").get_data(as_text=True)
    assert gp.name in shown and "Harbourside Health" in shown and "Clinician" in shown.title()
    joined = accept(newcomer, token)
    assert joined.status_code == 303 and joined.location == "/"
    assert newcomer.get("/").status_code == 200  # signed in
    robin = find_user_by_email("robin@example.org")
    assert robin.name == "Robin Nguyen"
    assert authenticate("robin@example.org", NEW) is not None
    held = db.session.scalars(select(ClinicMembership).filter_by(user_id=robin.id)).all()
    assert [(m.clinic_id, m.role) for m in held] == [(gp.id, "clinician")]
    assert {"team.invited", "team.invitation_accepted"} <= set(actions())

    again = app.test_client()
    refused = accept(again, token, name="Someone Else")
    assert refused.status_code == 410
    assert "already accepted" in refused.get_data(as_text=True)
    assert again.get(f"/invitations/{token}").status_code == 410
    assert db.session.scalar(select(func.count(User.id)).filter_by(name="Someone Else")) == 0


def test_the_service_refuses_a_second_use(app, demo):
    gp, _physio = gp_and_physio(demo)
    invited = invitations.invite("kim@example.org", demo, "clinic_admin", gp)
    db.session.commit()
    token = link_token(emails()[-1])
    assert invitations.accept(token, "Kim", NEW).new_account
    db.session.commit()
    with pytest.raises(invitations.InvitationProblem, match="already accepted"):
        invitations.accept(token, "Kim Again", NEW)
    db.session.rollback()
    assert invited.link.endswith(token)


def test_an_expired_invitation_says_so_and_who_to_ask(app, demo):
    gp, _physio = gp_and_physio(demo)
    admin = admin_browser(app)
    assert invite_on_page(admin, demo, "late@example.org", "clinician", gp).status_code == 303
    token = link_token(emails()[-1])
    invitation = db.session.scalar(select(Invitation))
    invitation.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    newcomer = app.test_client()
    page = newcomer.get(f"/invitations/{token}")
    assert page.status_code == 410
    text = page.get_data(as_text=True)
    assert "expired" in text and "Morgan Lee" in text
    assert gp.name not in text  # nothing of the invitation but who to ask
    refused = newcomer.post(
        f"/invitations/{token}",
        data={"csrf_token": csrf_token(newcomer), "name": "Late", "new_password": NEW,
              "confirm": NEW},
    )  # fmt: skip
    assert refused.status_code == 410
    assert find_user_by_email("late@example.org") is None


def test_a_withdrawn_invitation_is_refused(app, demo):
    gp, _physio = gp_and_physio(demo)
    admin = admin_browser(app)
    assert invite_on_page(admin, demo, "gone@example.org", "clinician", gp).status_code == 303
    token = link_token(emails()[-1])
    invitation = db.session.scalar(select(Invitation))
    page = f"/organisations/{demo.id}/team"
    withdrawn = admin.post(
        f"/invitations/{invitation.id}/revoke", data={"csrf_token": csrf_token(admin, page)}
    )
    assert withdrawn.status_code == 303
    assert "team.invitation_revoked" in actions()
    newcomer = app.test_client()
    refused = newcomer.get(f"/invitations/{token}")
    assert refused.status_code == 410
    assert "withdrawn" in refused.get_data(as_text=True)
    taken = newcomer.post(
        f"/invitations/{token}",
        data={"csrf_token": csrf_token(newcomer), "name": "Gone", "new_password": NEW,
              "confirm": NEW},
    )  # fmt: skip
    assert taken.status_code == 410
    assert find_user_by_email("gone@example.org") is None
    # Nothing pending is left on the team page.
    assert "<td>gone@example.org</td>" not in admin.get(page).get_data(as_text=True)


def test_sending_again_kills_the_old_link_and_inviting_again_makes_no_second(app, demo):
    gp, _physio = gp_and_physio(demo)
    admin = admin_browser(app)
    assert invite_on_page(admin, demo, "twice@example.org", "clinician", gp).status_code == 303
    first = link_token(emails()[-1])
    again = invite_on_page(admin, demo, "twice@example.org", "clinic_admin", gp)
    assert again.status_code == 303
    second = link_token(emails()[-1])
    assert second != first
    assert db.session.scalar(select(func.count(Invitation.id))) == 1
    assert db.session.scalar(select(Invitation.role)) == "clinic_admin"

    invitation = db.session.scalar(select(Invitation))
    page = f"/organisations/{demo.id}/team"
    resent = admin.post(
        f"/invitations/{invitation.id}/resend", data={"csrf_token": csrf_token(admin, page)}
    )
    assert resent.status_code == 303
    third = link_token(emails()[-1])
    client = app.test_client()
    assert client.get(f"/invitations/{first}").status_code == 404
    assert client.get(f"/invitations/{second}").status_code == 404
    assert client.get(f"/invitations/{third}").status_code == 200
    assert "team.invitation_resent" in actions()


def test_an_unknown_link_reveals_nothing(app, demo, client):
    for token in ("nope", "x" * 500, "%E2%80%AE"):
        page = client.get(f"/invitations/{token}")
        assert page.status_code == 404
        assert "Harbourside" not in page.get_data(as_text=True)


def test_an_address_with_an_account_gets_the_role_and_signs_in_as_usual(app, demo):
    _gp, physio = gp_and_physio(demo)
    invitations.invite(CLINICIAN, demo, "clinic_admin", physio)
    db.session.commit()
    token = link_token(emails()[-1])
    assert "already have a vcpay account" in emails()[-1].body_text
    browser = app.test_client()
    shown = browser.get(f"/invitations/{token}").get_data(as_text=True)
    assert 'name="new_password"' not in shown
    taken = browser.post(
        f"/invitations/{token}", data={"csrf_token": csrf_token(browser, f"/invitations/{token}")}
    )
    assert taken.status_code == 303 and taken.location == "/sign-in"
    clinician = find_user_by_email(CLINICIAN)
    roles = {(m.clinic_id, m.role) for m in clinician.clinic_memberships}
    assert (physio.id, "clinic_admin") in roles
    assert authenticate(CLINICIAN, DEMO_PASSWORD) is not None  # the password is untouched
    assert sign_in(browser, CLINICIAN).status_code == 302
    assert browser.get(f"/clinics/{physio.id}/team").status_code == 200


def test_the_email_is_in_the_invitees_language_else_the_inviters(app, demo):
    gp, _physio = gp_and_physio(demo)
    manager = find_user_by_email(MANAGER)
    manager.locale = "sr_Latn"
    find_user_by_email(CLINICIAN).locale = "sr_Cyrl"
    invitations.invite("newcomer@example.org", demo, "clinician", gp, invited_by=manager)
    invitations.invite(CLINICIAN, demo, "organisation_admin", invited_by=manager)
    invitations.invite("operator@example.org", demo, "organisation_admin")
    db.session.commit()
    newcomer, known, operators = emails()
    assert newcomer.locale == "sr_Latn"
    assert known.locale == "sr_Cyrl"
    assert operators.locale == "en"
    assert "You are invited to vcpay" in operators.body_text  # nobody to name as the inviter


def test_someone_who_already_holds_the_role_is_not_invited(app, demo):
    gp, _physio = gp_and_physio(demo)
    admin = admin_browser(app)
    refused = invite_on_page(admin, demo, CLINICIAN, "clinician", gp)
    assert refused.status_code == 400
    assert "already has that role there" in refused.get_data(as_text=True)
    assert emails() == []


@pytest.mark.parametrize(
    ("new", "again", "message"),
    [
        ("short pass", None, "Use at least 12 characters."),
        ("qwerty123456", None, "one of the most common"),
        (NEW, "otter kettle ribbon", "The two new passwords are not the same."),
    ],
)
def test_a_weak_or_mistyped_password_is_refused_with_the_reason(app, demo, new, again, message):
    gp, _physio = gp_and_physio(demo)
    invitations.invite("weak@example.org", demo, "clinician", gp)
    db.session.commit()
    token = link_token(emails()[-1])
    refused = accept(app.test_client(), token, new=new, again=again)
    assert refused.status_code == 400
    assert message in refused.get_data(as_text=True)
    assert form_problems(refused.get_data(as_text=True)) == []
    assert find_user_by_email("weak@example.org") is None
    assert db.session.scalar(select(Invitation.accepted_at)) is None


def test_refused_tries_are_limited_per_address(app, demo):
    gp, _physio = gp_and_physio(demo)
    invitations.invite("limited@example.org", demo, "clinician", gp)
    db.session.commit()
    token = link_token(emails()[-1])
    browser = app.test_client()
    statuses = [accept(browser, token, new="short").status_code for _ in range(6)]
    assert statuses[:5] == [400] * 5
    assert statuses[5] == 429
    assert "Too many attempts" in accept(browser, token).get_data(as_text=True)


@pytest.fixture
def catcher(app):
    with start_mail_catcher() as running:
        app.config.update(SMTP_HOST=running.host, SMTP_PORT=running.smtp_port)
        yield running


def test_the_delivered_email_carries_a_link_that_works(app, demo, catcher):
    """Over real SMTP to the mail catcher, as the invited person's inbox gets it."""
    gp, _physio = gp_and_physio(demo)
    admin = admin_browser(app)
    assert invite_on_page(admin, demo, "inbox@example.org", "clinic_admin", gp).status_code == 303
    send_email(emails()[-1].id)
    db.session.expire_all()
    [message] = catcher.store.messages()
    assert list(message.envelope_recipients) == ["inbox@example.org"]
    assert message.subject == "You are invited to vcpay"
    match = LINK.search(message.text)
    assert match, message.text
    newcomer = app.test_client()
    accepted = accept(newcomer, match.group(1), name="Inbox Person")
    assert newcomer.get(f"/clinics/{gp.id}/team").status_code == 302
    enrol_as_new_admin(newcomer, accepted)
    assert newcomer.get(f"/clinics/{gp.id}/team").status_code == 200  # a clinic admin now


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@b\x00.org", "x" * 300 + "@example.org"])
def test_the_service_refuses_what_is_no_email_address(app, demo, email):
    with pytest.raises(invitations.InvitationProblem, match="Enter an email address"):
        invitations.invite(email, demo, "organisation_admin")
    db.session.rollback()
    assert db.session.scalar(select(func.count(Invitation.id))) == 0
