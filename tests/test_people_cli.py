"""`flask --app wsgi people ...`: the operator lists people and disables or enables one."""

from sqlalchemy import select

from tests import factories
from tests.conftest import sign_in
from vcpay.audit.models import AuditEntry
from vcpay.extensions import db
from vcpay.people.services import find_user_by_email


def people(runner, *arguments):
    return runner.invoke(args=["people", *arguments])


def test_list_shows_each_person_with_their_roles(runner, demo):
    listed = people(runner, "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    manager = lines.index("manager@harbourside.example  Morgan Lee  (active)")
    assert lines[manager + 1] == "    telehealth manager: Harbourside Health"
    clinician = lines.index("clinician@harbourside.example  Dr Jordan Rivers  (active)")
    assert lines[clinician + 1] == "    clinician: Harbourside GP Clinic"


def test_list_for_one_organisation_leaves_out_the_others(runner, demo):
    other = factories.organisation("Elsewhere Health", "Elsewhere Clinic")
    factories.org_admin("boss@elsewhere.example", other)
    db.session.commit()
    listed = people(runner, "list", "--organisation", "Elsewhere Health")
    assert "boss@elsewhere.example" in listed.output
    assert "harbourside" not in listed.output
    unknown = people(runner, "list", "--organisation", "Nowhere")
    assert unknown.exit_code == 1
    assert "No organisation is named 'Nowhere'." in unknown.output


def test_disable_signs_the_person_out_everywhere_and_enable_lets_them_back(app, runner, demo):
    browser = app.test_client()
    sign_in(browser, "clinicadmin@harbourside.example")
    assert browser.get("/settings").status_code == 200

    disabled = people(runner, "disable", "ClinicAdmin@Harbourside.example")
    assert disabled.exit_code == 0, disabled.output
    assert "Disabled clinicadmin@harbourside.example" in disabled.output
    assert browser.get("/settings").status_code == 302  # signed out
    refused = sign_in(app.test_client(), "clinicadmin@harbourside.example")
    assert refused.status_code != 302
    assert "already disabled" in people(runner, "disable", "clinicadmin@harbourside.example").output

    enabled = people(runner, "enable", "clinicadmin@harbourside.example")
    assert enabled.exit_code == 0
    assert sign_in(app.test_client(), "clinicadmin@harbourside.example").status_code == 302
    db.session.rollback()
    user = find_user_by_email("clinicadmin@harbourside.example")
    actions = db.session.scalars(
        select(AuditEntry.action)
        .filter_by(object_type="User", object_id=str(user.id))
        .where(AuditEntry.action.in_(["user.disabled", "user.enabled"]))
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["user.disabled", "user.enabled"]


def test_an_unknown_email_is_said_plainly(runner, demo):
    answer = people(runner, "disable", "nobody@example.org")
    assert answer.exit_code == 1
    assert "Nobody has an account with the email 'nobody@example.org'." in answer.output
