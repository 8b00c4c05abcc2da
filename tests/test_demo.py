"""Demo data: one organisation, two clinics, one person per role; safe to seed again."""

import json

from sqlalchemy import func, select

from tests.conftest import sign_in
from vcpay.config import SETTINGS
from vcpay.extensions import db
from vcpay.people.demo import DEMO_PASSWORD, DEMO_PEOPLE
from vcpay.people.models import (
    Clinic,
    ClinicMembership,
    Organisation,
    OrganisationMembership,
    User,
)


def counts() -> dict[str, int]:
    models = (Organisation, Clinic, User, OrganisationMembership, ClinicMembership)
    return {m.__name__: db.session.scalar(select(func.count()).select_from(m)) for m in models}


def test_seeding_twice_adds_nothing_the_second_time(runner):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "Harbourside Health, 2 clinics" in first.output
    after_first = counts()
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    assert (
        counts()
        == after_first
        == {
            "Organisation": 1,
            "Clinic": 2,
            "User": 4,
            "OrganisationMembership": 2,
            "ClinicMembership": 2,
        }
    )


def test_the_first_organisation_admin_is_the_telehealth_manager(demo):
    managers = {m.user.email: m.is_telehealth_manager for m in demo.memberships}
    assert managers == {
        "manager@harbourside.example": True,
        "orgadmin@harbourside.example": False,
    }


def test_every_demo_person_signs_in_with_the_documented_password(client, demo):
    for person in DEMO_PEOPLE:
        assert sign_in(client, person.email).status_code == 302, person.email
        client.delete_cookie("vcpay_session")


def test_seeding_completes_a_partly_seeded_organisation(runner, demo):
    db.session.delete(demo.clinics[1])
    db.session.commit()
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    assert counts()["Clinic"] == 2


def test_demo_settings_tell_make_run_what_to_start_and_no_secret(app, runner):
    answer = runner.invoke(args=["demo-settings"])
    assert answer.exit_code == 0, answer.output
    settings = json.loads(answer.output)

    assert settings["PUBLIC_URL"] == app.config["PUBLIC_URL"]
    assert settings["JIRA_URL"] == app.config["JIRA_URL"]
    assert settings["INSTANCE_PATH"] == app.instance_path
    assert isinstance(settings["EMBEDDED_BROKER"], bool)
    assert settings["DEMO_PASSWORD"] == DEMO_PASSWORD
    assert [p["email"] for p in settings["DEMO_PEOPLE"]] == [p.email for p in DEMO_PEOPLE]
    secret_keys = {setting.key for setting in SETTINGS if setting.secret}
    assert not secret_keys & set(settings)
    for key in secret_keys:
        if app.config.get(key):
            assert str(app.config[key]) not in answer.output, key
