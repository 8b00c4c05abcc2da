"""Team pages: an organisation admin's clinics, people and telehealth manager; a clinic
admin's own clinic only. A clinic keeps its last clinic admin, an organisation its last
organisation admin; a change of role counts from the person's next page."""

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import csrf_token, sign_in
from tests.test_form_fields import problems as form_problems
from tests.test_races import at_once
from vcpay.audit.models import AuditEntry
from vcpay.audit.reading import kind_of
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail
from vcpay.people.demo import DEMO_PASSWORD
from vcpay.people.models import (
    Clinic,
    ClinicMembership,
    ClinicRole,
    OrganisationMembership,
    User,
)
from vcpay.people.services import add_clinic_role, find_user_by_email
from vcpay.teams import invitations
from vcpay.teams import services as team
from vcpay.teams.models import Invitation
from vcpay.teams.services import TeamProblem

MANAGER = "manager@harbourside.example"
ORG_ADMIN = "orgadmin@harbourside.example"
CLINIC_ADMIN = "clinicadmin@harbourside.example"
CLINICIAN = "clinician@harbourside.example"


def browser(app, email=MANAGER, password=None):
    client = app.test_client()
    if password is None and not email.endswith("@harbourside.example"):
        password = factories.PASSWORD
    signed = sign_in(client, email, password or DEMO_PASSWORD)
    assert signed.status_code == 302
    return client


def post(client, path, page, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, page), **data})


def audited(action: str) -> list[AuditEntry]:
    db.session.rollback()
    return list(db.session.scalars(select(AuditEntry).filter_by(action=action)))


def emails_to(address: str) -> list[OutboundEmail]:
    db.session.rollback()
    return list(db.session.scalars(select(OutboundEmail).filter_by(recipient=address)))


def roles_in_clinic(email: str, clinic: Clinic) -> set[str]:
    db.session.rollback()
    user = find_user_by_email(email)
    query = select(ClinicMembership.role).filter_by(user_id=user.id, clinic_id=clinic.id)
    return set(db.session.scalars(query))


def test_a_role_change_counts_from_the_next_page(app, demo):
    gp = demo.clinics[0]
    factories.clinic_person("second@harbourside.example", gp, ClinicRole.CLINIC_ADMIN)
    db.session.commit()
    clinic_admin = browser(app, CLINIC_ADMIN)
    assert clinic_admin.get(f"/clinics/{gp.id}/team").status_code == 200
    assert clinic_admin.get(f"/client-payments/clinics/{gp.id}").status_code == 200

    admin = browser(app)
    target = find_user_by_email(CLINIC_ADMIN)
    page = f"/clinics/{gp.id}/team"
    changed = post(admin, f"/clinics/{gp.id}/people/{target.id}/role", page, role="clinician")
    assert changed.status_code == 303
    assert roles_in_clinic(CLINIC_ADMIN, gp) == {"clinician"}
    # The same browser, no new sign-in: its permissions are read again on this request.
    assert clinic_admin.get(f"/clinics/{gp.id}/team").status_code == 403
    assert clinic_admin.get(f"/client-payments/clinics/{gp.id}").status_code == 403
    [entry] = audited("team.role_changed")
    assert entry.details == {"user": target.id, "before": ["clinic_admin"], "after": ["clinician"]}

    back = post(admin, f"/clinics/{gp.id}/people/{target.id}/role", page, role="clinic_admin")
    assert back.status_code == 303
    assert clinic_admin.get(f"/clinics/{gp.id}/team").status_code == 200


def test_the_last_clinic_admin_is_neither_demoted_nor_removed(app, demo):
    gp = demo.clinics[0]
    admin = browser(app)
    last = find_user_by_email(CLINIC_ADMIN)
    page = f"/clinics/{gp.id}/team"
    demoted = post(admin, f"/clinics/{gp.id}/people/{last.id}/role", page, role="clinician")
    assert demoted.status_code == 400
    assert "is the only clinic admin of Harbourside GP Clinic" in demoted.get_data(as_text=True)
    removed = post(admin, f"/clinics/{gp.id}/people/{last.id}/remove", page)
    assert removed.status_code == 400
    assert "make someone else a clinic admin there first" in removed.get_data(as_text=True)
    assert roles_in_clinic(CLINIC_ADMIN, gp) == {"clinic_admin"}
    # The clinic admin cannot remove themself either, and the service refuses it whoever asks.
    with pytest.raises(TeamProblem):
        team.remove_from_clinic(gp, last)
    with pytest.raises(TeamProblem):
        team.set_clinic_role(gp, last, ClinicRole.CLINICIAN)
    with pytest.raises(TeamProblem):
        team.remove_from_organisation(demo, last)
    db.session.rollback()
    assert roles_in_clinic(CLINIC_ADMIN, gp) == {"clinic_admin"}
    assert audited("team.removed") == []


def test_someone_removed_from_their_last_role_is_signed_out(app, demo):
    gp = demo.clinics[0]
    clinician = browser(app, CLINICIAN)
    assert clinician.get("/calls/").status_code == 200
    clinic_admin = browser(app, CLINIC_ADMIN)
    target = find_user_by_email(CLINICIAN)
    page = f"/clinics/{gp.id}/team"
    removed = post(clinic_admin, f"/clinics/{gp.id}/people/{target.id}/remove", page)
    assert removed.status_code == 303
    assert roles_in_clinic(CLINICIAN, gp) == set()
    signed_out = clinician.get("/calls/")
    assert signed_out.status_code == 302 and signed_out.location.startswith("/sign-in")
    [entry] = audited("team.removed")
    assert entry.details == {"user": target.id, "roles": ["clinician"]}


def test_someone_with_a_role_left_elsewhere_stays_signed_in(app, demo):
    gp, physio = demo.clinics
    factories.clinic_person("two@harbourside.example", physio, ClinicRole.CLINICIAN)
    add_clinic_role(find_user_by_email("two@harbourside.example"), gp, ClinicRole.CLINICIAN)
    db.session.commit()
    two = browser(app, "two@harbourside.example", factories.PASSWORD)
    admin = browser(app)
    target = find_user_by_email("two@harbourside.example")
    page = f"/clinics/{gp.id}/team"
    assert post(admin, f"/clinics/{gp.id}/people/{target.id}/remove", page).status_code == 303
    assert two.get("/calls/").status_code == 200


def test_an_organisation_keeps_one_admin_and_its_telehealth_manager(app, demo):
    admin = browser(app, ORG_ADMIN)
    page = f"/organisations/{demo.id}/team"
    manager = find_user_by_email(MANAGER)
    refused = post(admin, f"/organisations/{demo.id}/people/{manager.id}/remove", page)
    assert refused.status_code == 400
    assert "is the authorised telehealth manager: choose another one first" in refused.get_data(
        as_text=True
    )

    other = factories.organisation("Riverside Care", "Riverside GP")
    alone = factories.org_admin("alone@riverside.example", other)
    db.session.commit()
    with pytest.raises(TeamProblem, match="only organisation admin"):
        team.remove_from_organisation(other, alone)
    db.session.rollback()

    removed_admin = browser(app, MANAGER)
    target = find_user_by_email(ORG_ADMIN)
    gone = post(removed_admin, f"/organisations/{demo.id}/people/{target.id}/remove", page)
    assert gone.status_code == 303
    assert admin.get("/").status_code == 302  # no role left anywhere: signed out
    assert (
        db.session.scalar(
            select(func.count(OrganisationMembership.id)).filter_by(organisation_id=demo.id)
        )
        == 1
    )
    assert audited("team.removed")[0].details["organisation_admin"] is True


def test_exactly_one_telehealth_manager_switched_emailed_and_audited(app, demo):
    admin = browser(app, ORG_ADMIN)
    page = f"/organisations/{demo.id}/team"
    manager, org_admin = find_user_by_email(MANAGER), find_user_by_email(ORG_ADMIN)
    switched = post(admin, f"/organisations/{demo.id}/telehealth-manager", page,
                    person=str(org_admin.id))  # fmt: skip
    assert switched.status_code == 303

    def managers():
        db.session.rollback()
        query = select(OrganisationMembership.user_id).filter_by(
            organisation_id=demo.id, is_telehealth_manager=True
        )
        return list(db.session.scalars(query))

    assert managers() == [org_admin.id]
    [new_mail] = emails_to(ORG_ADMIN)
    [old_mail] = emails_to(MANAGER)
    assert "You are now the authorised telehealth manager" in new_mail.body_text
    assert "no longer the authorised telehealth manager" in old_mail.body_text
    assert "Alex Chen" in old_mail.body_text
    [entry] = audited("organisation.telehealth_manager_changed")
    assert entry.details == {"before": manager.id, "after": org_admin.id}
    assert entry.actor_id == org_admin.id

    # And back again: still one, each emailed once more.
    back = post(admin, f"/organisations/{demo.id}/telehealth-manager", page,
                person=str(manager.id))  # fmt: skip
    assert back.status_code == 303
    assert managers() == [manager.id]
    assert len(emails_to(MANAGER)) == 2 and len(emails_to(ORG_ADMIN)) == 2
    # Choosing the one it is changes nothing.
    assert post(admin, f"/organisations/{demo.id}/telehealth-manager", page,
                person=str(manager.id)).status_code == 303  # fmt: skip
    assert len(audited("organisation.telehealth_manager_changed")) == 2


def test_only_an_organisation_admin_can_be_the_manager(app, demo):
    admin = browser(app)
    page = f"/organisations/{demo.id}/team"
    clinic_admin = find_user_by_email(CLINIC_ADMIN)
    refused = post(admin, f"/organisations/{demo.id}/telehealth-manager", page,
                   person=str(clinic_admin.id))  # fmt: skip
    assert refused.status_code == 400
    assert "Not a valid choice" in refused.get_data(as_text=True)
    with pytest.raises(TeamProblem):
        team.set_telehealth_manager(demo, clinic_admin)


def test_a_clinic_admin_sees_and_touches_only_their_clinic(app, demo):
    gp, physio = demo.clinics
    clinic_admin = browser(app, CLINIC_ADMIN)
    assert clinic_admin.get(f"/clinics/{gp.id}/team").status_code == 200
    assert clinic_admin.get(f"/clinics/{physio.id}/team").status_code == 404
    assert clinic_admin.get(f"/organisations/{demo.id}/team").status_code == 403
    page = f"/clinics/{gp.id}/team"
    org_actions = [
        (f"/organisations/{demo.id}/team/invitations", {"email": "x@example.org",
                                                        "role": "organisation_admin"}),
        (f"/organisations/{demo.id}/clinics", {"name": "Mine", "time_zone": "UTC"}),
        (f"/organisations/{demo.id}/telehealth-manager",
         {"person": str(find_user_by_email(CLINIC_ADMIN).id)}),
        (f"/clinics/{gp.id}/rename", {"name": "Renamed"}),
    ]  # fmt: skip
    for path, data in org_actions:
        assert post(clinic_admin, path, page, **data).status_code == 403, path
    clinician = find_user_by_email(CLINICIAN)
    physio_invite = post(clinic_admin, f"/clinics/{physio.id}/team/invitations", page,
                         email="x@example.org", role="clinician")  # fmt: skip
    assert physio_invite.status_code == 404
    assert post(clinic_admin, f"/clinics/{physio.id}/people/{clinician.id}/remove",
                page).status_code == 404  # fmt: skip
    # Their own clinic's people only: the organisation's admins are not listed.
    text = clinic_admin.get(page).get_data(as_text=True)
    assert "Dr Jordan Rivers" in text and "Morgan Lee" not in text
    assert db.session.scalar(select(func.count(Clinic.id))) == 2
    assert roles_in_clinic(CLINICIAN, gp) == {"clinician"}


def test_another_organisations_ids_are_not_found(app, demo):
    other = factories.organisation("Riverside Care", "Riverside GP")
    stranger = factories.clinic_person("c@riverside.example", other.clinics[0],
                                       ClinicRole.CLINICIAN)  # fmt: skip
    db.session.commit()
    admin = browser(app)
    page = f"/organisations/{demo.id}/team"
    assert admin.get(f"/organisations/{other.id}/team").status_code == 404
    assert admin.get(f"/clinics/{other.clinics[0].id}/team").status_code == 404
    gp = demo.clinics[0]
    # A person of another organisation, through this one's clinic: not found.
    assert post(admin, f"/clinics/{gp.id}/people/{stranger.id}/remove", page).status_code == 404
    assert post(admin, f"/organisations/{demo.id}/people/{stranger.id}/remove",
                page).status_code == 404  # fmt: skip
    # Another organisation's clinic in this one's invite form: not a choice.
    foreign_clinic = str(other.clinics[0].id)
    refused = post(admin, f"/organisations/{demo.id}/team/invitations", page,
                   email="x@example.org", role="clinician", clinic=foreign_clinic)  # fmt: skip
    assert refused.status_code == 400
    assert roles_in_clinic("c@riverside.example", other.clinics[0]) == {"clinician"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "x" * 10_000 + "@example.org"}, "at most 254 characters"),
        ({"email": "not an address"}, "Enter an email address such as"),
        ({"email": ""}, "Enter the email address of the person to invite."),
        ({"email": "a@example.org", "role": "owner"}, "Not a valid choice"),
        ({"email": "a@example.org", "role": "clinician"}, "Choose the clinic"),
        ({"email": "a@example.org\u200f\u202e"}, ""),
    ],
)
def test_hostile_invitations_are_refused_with_a_message(app, demo, data, message):
    admin = browser(app)
    page = f"/organisations/{demo.id}/team"
    fields = {"role": "organisation_admin", "clinic": "", **data}
    refused = post(admin, f"/organisations/{demo.id}/team/invitations", page, **fields)
    assert refused.status_code == 400
    assert message in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count(OutboundEmail.id))) == 0


def test_a_nul_byte_is_refused_before_anything(app, demo):
    admin = browser(app)
    gp = demo.clinics[0]
    page = f"/clinics/{gp.id}/team"
    refused = post(admin, f"/clinics/{gp.id}/team/invitations", page,
                   email="a\x00@example.org", role="clinician")  # fmt: skip
    assert refused.status_code == 400
    named = post(admin, f"/organisations/{demo.id}/clinics", page, name="Nul\x00", time_zone="UTC")
    assert named.status_code == 400
    assert db.session.scalar(select(func.count(Clinic.id))) == 2


def test_clinics_are_created_and_renamed(app, demo):
    admin = browser(app)
    page = f"/organisations/{demo.id}/team"
    made = post(admin, f"/organisations/{demo.id}/clinics", page,
                name="Harbourside Dental", time_zone="Australia/Perth")  # fmt: skip
    assert made.status_code == 303
    dental = db.session.scalar(select(Clinic).filter_by(name="Harbourside Dental"))
    assert dental.time_zone == "Australia/Perth" and dental.organisation_id == demo.id
    assert audited("clinic.created")[0].details["time_zone"] == "Australia/Perth"

    taken = post(admin, f"/clinics/{dental.id}/rename", page, name="harbourside gp clinic")
    assert taken.status_code == 400
    assert "already has a clinic named" in taken.get_data(as_text=True)
    long = post(admin, f"/clinics/{dental.id}/rename", page, name="x" * 10_000)
    assert long.status_code == 400
    assert "at most 200 characters" in long.get_data(as_text=True)
    zone = post(admin, f"/organisations/{demo.id}/clinics", page, name="Elsewhere",
                time_zone="Mars/Olympus")  # fmt: skip
    assert zone.status_code == 400 and "Not a valid choice" in zone.get_data(as_text=True)

    renamed = post(admin, f"/clinics/{dental.id}/rename", page, name="Harbourside Smiles")
    assert renamed.status_code == 303
    [entry] = audited("clinic.renamed")
    assert entry.details == {"before": "Harbourside Dental", "after": "Harbourside Smiles"}


def test_the_team_is_in_the_configure_menu_and_on_the_organisation_page(app, demo):
    admin = browser(app)
    home = admin.get("/").get_data(as_text=True)
    assert 'href="/team"' in home
    listing = admin.get("/team").get_data(as_text=True)
    assert f'href="/organisations/{demo.id}/team"' in listing
    organisation = admin.get(f"/organisations/{demo.id}").get_data(as_text=True)
    assert f'href="/organisations/{demo.id}/team"' in organisation
    clinic_admin = browser(app, CLINIC_ADMIN)
    assert f'href="/clinics/{demo.clinics[0].id}/team"' in clinic_admin.get("/team").get_data(
        as_text=True
    )
    clinician = browser(app, CLINICIAN)
    assert 'href="/team"' not in clinician.get("/").get_data(as_text=True)
    assert clinician.get("/team").status_code == 403


def test_two_clinic_admins_demoting_each_other_at_once_leave_one(app, demo):
    """Each rival its own thread, application context and session, as two web servers."""
    gp = demo.clinics[0]
    second = factories.clinic_person("second@harbourside.example", gp, ClinicRole.CLINIC_ADMIN)
    first = find_user_by_email(CLINIC_ADMIN)
    db.session.commit()
    pair, gp_id = (first.id, second.id), gp.id  # plain ids: the rivals have sessions of their own

    def demote(user_id: int) -> bool:
        try:
            team.set_clinic_role(
                db.session.get(Clinic, gp_id), db.session.get(User, user_id), ClinicRole.CLINICIAN
            )
        except TeamProblem:
            db.session.rollback()
            return False
        db.session.commit()
        return True

    for _round in range(6):
        won = at_once(app, lambda: demote(pair[0]), lambda: demote(pair[1]))
        assert sorted(won) == [False, True]
        admins = db.session.scalar(
            select(func.count(ClinicMembership.id)).filter_by(clinic_id=gp_id, role="clinic_admin")
        )
        assert admins == 1
        for user_id in pair:  # both admins again for the next round
            team.set_clinic_role(gp, db.session.get(User, user_id), ClinicRole.CLINIC_ADMIN)
        db.session.commit()


def test_the_team_pages_tie_every_field_to_its_label_and_errors(app, demo):
    gp = demo.clinics[0]
    admin = browser(app)
    organisation_page = f"/organisations/{demo.id}/team"
    clinic_page = f"/clinics/{gp.id}/team"
    for page in (organisation_page, clinic_page, "/team"):
        assert form_problems(admin.get(page).get_data(as_text=True)) == [], page
    refused = post(admin, f"/organisations/{demo.id}/team/invitations", organisation_page,
                   email="bad", role="clinician", clinic="")  # fmt: skip
    html = refused.get_data(as_text=True)
    assert form_problems(html) == []
    assert 'aria-describedby="email-error" aria-invalid="true"' in html
    renamed = post(admin, f"/clinics/{gp.id}/rename", organisation_page, name="")
    assert form_problems(renamed.get_data(as_text=True)) == []
    last = find_user_by_email(CLINIC_ADMIN)
    demoted = post(admin, f"/clinics/{gp.id}/people/{last.id}/role", clinic_page,
                   role="clinician")  # fmt: skip
    html = demoted.get_data(as_text=True)
    assert form_problems(html) == []
    assert f'aria-describedby="role-{last.id}-error"' in html


def test_team_changes_are_listed_as_people_or_clinics_on_the_audit_page(app, demo):
    for action in ("team.invited", "team.removed", "organisation.telehealth_manager_changed"):
        assert kind_of(action) == "People", action
    for action in ("clinic.created", "clinic.renamed"):
        assert kind_of(action) == "Clinics", action


def test_a_clinic_admin_touches_only_their_clinics_invitations(app, demo):
    gp, physio = demo.clinics
    ours = invitations.invite("ours@example.org", demo, "clinician", gp).invitation
    theirs = invitations.invite("theirs@example.org", demo, "clinician", physio).invitation
    admins = invitations.invite("admins@example.org", demo, "organisation_admin").invitation
    db.session.commit()
    ids = {"ours": ours.id, "theirs": theirs.id, "admins": admins.id}
    clinic_admin = browser(app, CLINIC_ADMIN)
    page = f"/clinics/{gp.id}/team"
    listed = clinic_admin.get(page).get_data(as_text=True)
    assert "ours@example.org" in listed
    assert "theirs@example.org" not in listed and "admins@example.org" not in listed
    assert post(clinic_admin, f"/invitations/{ids['theirs']}/revoke", page).status_code == 404
    assert post(clinic_admin, f"/invitations/{ids['admins']}/revoke", page).status_code == 403
    assert post(clinic_admin, f"/invitations/{ids['admins']}/resend", page).status_code == 403
    revoked = post(clinic_admin, f"/invitations/{ids['ours']}/revoke", page)
    assert revoked.status_code == 303 and revoked.location == page
    db.session.rollback()
    states = dict(db.session.execute(select(Invitation.email, Invitation.revoked_at)).all())
    assert states["ours@example.org"] is not None
    assert states["theirs@example.org"] is None and states["admins@example.org"] is None
