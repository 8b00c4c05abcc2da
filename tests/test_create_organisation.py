"""`flask --app wsgi create-organisation`: an organisation from nothing, its first clinics,
and an invitation to its first admin, who becomes its telehealth manager on accepting."""

import pytest
from sqlalchemy import func, select

from tests.test_invitations import accept, emails, enrol_as_new_admin, link_token
from vcpay.audit.models import AuditEntry
from vcpay.extensions import db
from vcpay.people.models import Clinic, Organisation, OrganisationMembership
from vcpay.people.services import find_user_by_email
from vcpay.teams.invitations import invite
from vcpay.teams.models import Invitation


@pytest.fixture
def app_overrides() -> dict:
    return {"CELERY_BROKER_URL": "memory://", "RATELIMIT_STORAGE_URI": "memory://"}


def create(runner, *arguments):
    return runner.invoke(args=["create-organisation", *arguments])


def count(model) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(model))


def test_an_organisation_from_nothing_to_its_first_admin_and_telehealth_manager(app, runner):
    made = create(
        runner,
        "Riverside Health",
        "--admin-email",
        "Alex@Riverside.example",
        "--clinic",
        "Riverside GP",
        "--clinic",
        "Riverside Physio",
        "--time-zone",
        "Australia/Brisbane",
    )
    assert made.exit_code == 0, made.output
    assert "Created Riverside Health with Riverside GP, Riverside Physio." in made.output
    organisation = db.session.scalar(select(Organisation).filter_by(name="Riverside Health"))
    assert sorted((c.name, c.time_zone) for c in organisation.clinics) == [
        ("Riverside GP", "Australia/Brisbane"),
        ("Riverside Physio", "Australia/Brisbane"),
    ]
    [email] = emails()
    assert email.recipient == "alex@riverside.example"
    token = link_token(email)
    assert f"/invitations/{token}" in made.output  # for when email is not set up yet

    browser = app.test_client()
    enrol_as_new_admin(browser, accept(browser, token, name="Alex Chen"))
    alex = find_user_by_email("alex@riverside.example")
    [membership] = alex.organisation_memberships
    assert (membership.organisation_id, membership.is_telehealth_manager) == (organisation.id, True)
    assert browser.get(f"/organisations/{organisation.id}/team").status_code == 200
    changed = db.session.scalar(
        select(AuditEntry).filter_by(action="organisation.telehealth_manager_changed")
    )
    assert (changed.actor_id, changed.organisation_id) == (alex.id, organisation.id)


def test_a_second_organisation_admin_is_not_made_the_manager(app, runner):
    create(runner, "Riverside Health", "--admin-email", "alex@riverside.example")
    accept(app.test_client(), link_token(emails()[-1]), name="Alex Chen")
    organisation = db.session.scalar(select(Organisation).filter_by(name="Riverside Health"))
    again = create(runner, "Riverside Health", "--admin-email", "kim@riverside.example")
    assert again.exit_code == 1
    assert "An organisation named 'Riverside Health' exists already." in again.output

    invite("kim@riverside.example", organisation, "organisation_admin")
    db.session.commit()
    accept(app.test_client(), link_token(emails()[-1]), name="Kim Lo")
    managers = db.session.scalars(
        select(OrganisationMembership).filter_by(
            organisation_id=organisation.id, is_telehealth_manager=True
        )
    ).all()
    assert [m.user.email for m in managers] == ["alex@riverside.example"]


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["Bad\x00Name", "--admin-email", "a@b.example"], "without control characters"),
        (["x" * 201, "--admin-email", "a@b.example"], "1 to 200 characters"),
        (["Fine", "--admin-email", "not an address"], "admin-email"),
        (["Fine", "--admin-email", "a@b.example", "--time-zone", "Mars/Base"], "Mars/Base"),
        (["Fine", "--admin-email", "a@b.example", "--clinic", " "], "clinic name"),
    ],
)
def test_what_does_not_fit_is_said_and_nothing_is_made(runner, arguments, said):
    refused = create(runner, *arguments)
    assert refused.exit_code == 2, refused.output
    assert said in refused.output
    assert (count(Organisation), count(Clinic), count(Invitation)) == (0, 0, 0)
