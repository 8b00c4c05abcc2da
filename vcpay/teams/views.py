"""Team pages: an organisation's clinics, admins and telehealth manager; a clinic's people
and their roles; invitations, and the page where an invitation is accepted.

Longer than most modules because the two team pages share their forms, their refusals (the
page again, with the form's messages, 400) and their redirects, and each small action is a
route of its own."""

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask_babel import gettext as _
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required
from sqlalchemy import select

from vcpay.audit.services import record_audit
from vcpay.auth import two_factor
from vcpay.auth.sessions import begin_sign_in
from vcpay.clinic_clocks import default_zone_name
from vcpay.extensions import db, limiter
from vcpay.forms import ConfirmForm
from vcpay.people.models import (
    Clinic,
    ClinicMembership,
    ClinicRole,
    Organisation,
    OrganisationMembership,
    User,
)
from vcpay.people.permissions import (
    Permission,
    can,
    clinics_where,
    organisations_where,
    require,
)
from vcpay.teams import invitations
from vcpay.teams import services as team
from vcpay.teams.forms import (
    NO_CLINIC,
    AcceptForExistingAccountForm,
    AcceptInvitationForm,
    ClinicInviteForm,
    ClinicRoleForm,
    InviteForm,
    NewClinicForm,
    RenameClinicForm,
    TelehealthManagerForm,
)
from vcpay.teams.invitations import InvitationProblem
from vcpay.teams.models import Invitation
from vcpay.teams.services import TeamProblem

blueprint = Blueprint("teams", __name__)
blueprint.add_app_template_global(invitations.role_name, "role_name")


def _me() -> User:
    return current_user._get_current_object()


@blueprint.route("/team")
@login_required
def index():
    """Every team the person manages: their organisations', and clinics they administer."""
    organisations = organisations_where(current_user, Permission.MANAGE_ORGANISATION_TEAM)
    clinics = [
        c
        for c in clinics_where(current_user, Permission.MANAGE_TEAM)
        if c.organisation not in organisations
    ]
    if not organisations and not clinics:
        abort(403)
    return render_template("teams/index.html", organisations=organisations, clinics=clinics)


# The organisation's team.


def _organisation(organisation_id: int) -> Organisation:
    organisation = db.session.get(Organisation, organisation_id)
    require(Permission.MANAGE_ORGANISATION_TEAM, organisation)
    return organisation


def _admins(organisation: Organisation) -> list[User]:
    memberships = db.session.scalars(
        select(OrganisationMembership).filter_by(organisation_id=organisation.id)
    )
    return sorted((m.user for m in memberships), key=lambda u: (u.name.lower(), u.id))


def _organisation_page(organisation: Organisation, status: int = 200, **forms):
    manager = organisation.telehealth_manager
    page_forms = {
        "invite_form": InviteForm(organisation.clinics, formdata=None),
        "clinic_form": NewClinicForm(formdata=None, time_zone=default_zone_name()),
        "rename_form": RenameClinicForm(formdata=None),
        "manager_form": TelehealthManagerForm(
            _admins(organisation),
            formdata=None,
            person=str(manager.id) if manager else None,
        ),
        "confirm_form": ConfirmForm(formdata=None),
        "renaming": None,
    }
    page_forms.update(forms)
    page = render_template(
        "teams/organisation.html",
        organisation=organisation,
        members=team.members_of(organisation),
        clinics={c.id: c for c in organisation.clinics},
        pending=invitations.pending_invitations(organisation),
        **page_forms,
    )
    return page, status


@blueprint.route("/organisations/<int:organisation_id>/team")
@login_required
def organisation_team(organisation_id: int):
    return _organisation_page(_organisation(organisation_id))


@blueprint.route("/organisations/<int:organisation_id>/team/invitations", methods=["POST"])
@login_required
def invite_to_organisation(organisation_id: int):
    organisation = _organisation(organisation_id)
    form = InviteForm(organisation.clinics)
    if form.validate_on_submit():
        clinic = None
        if form.clinic.data != NO_CLINIC:
            clinic = db.session.get(Clinic, int(form.clinic.data))
        try:
            invited = invitations.invite(
                form.email.data, organisation, form.role.data, clinic, invited_by=_me()
            )
        except InvitationProblem as problem:
            db.session.rollback()
            form.email.errors.append(str(problem))
        else:
            db.session.commit()
            _flash_invited(invited)
            return redirect(
                url_for("teams.organisation_team", organisation_id=organisation.id), 303
            )
    return _organisation_page(organisation, 400, invite_form=form)


def _flash_invited(invited: invitations.Invited) -> None:
    email = invited.invitation.email
    if invited.resent:
        flash(
            _("%(email)s was already invited: the invitation was sent again.", email=email),
            "success",
        )
    else:
        flash(_("Invitation sent to %(email)s.", email=email), "success")


@blueprint.route("/organisations/<int:organisation_id>/clinics", methods=["POST"])
@login_required
def create_clinic(organisation_id: int):
    organisation = _organisation(organisation_id)
    form = NewClinicForm()
    if form.validate_on_submit():
        try:
            clinic = team.create_clinic(organisation, form.name.data, form.time_zone.data)
        except TeamProblem as problem:
            db.session.rollback()
            form.name.errors.append(str(problem))
        else:
            db.session.commit()
            flash(
                _("%(clinic)s is created. Invite its clinic admin next.", clinic=clinic.name),
                "success",
            )
            return redirect(
                url_for("teams.organisation_team", organisation_id=organisation.id), 303
            )
    return _organisation_page(organisation, 400, clinic_form=form)


@blueprint.route("/clinics/<int:clinic_id>/rename", methods=["POST"])
@login_required
def rename_clinic(clinic_id: int):
    clinic = db.session.get(Clinic, clinic_id)
    require(Permission.MANAGE_ORGANISATION_TEAM, clinic)
    form = RenameClinicForm()
    if form.validate_on_submit():
        try:
            renamed = team.rename_clinic(clinic, form.name.data)
        except TeamProblem as problem:
            db.session.rollback()
            form.name.errors.append(str(problem))
        else:
            db.session.commit()
            if renamed:
                flash(_("The clinic is renamed %(clinic)s.", clinic=clinic.name), "success")
            return redirect(
                url_for("teams.organisation_team", organisation_id=clinic.organisation_id), 303
            )
    return _organisation_page(clinic.organisation, 400, rename_form=form, renaming=clinic.id)


@blueprint.route("/organisations/<int:organisation_id>/telehealth-manager", methods=["POST"])
@login_required
def choose_manager(organisation_id: int):
    organisation = _organisation(organisation_id)
    form = TelehealthManagerForm(_admins(organisation))
    if form.validate_on_submit():
        chosen = db.session.get(User, int(form.person.data))
        try:
            changed = team.set_telehealth_manager(organisation, chosen)
        except TeamProblem as problem:
            db.session.rollback()
            form.person.errors.append(str(problem))
        else:
            db.session.commit()
            if changed:
                flash(
                    _("%(name)s is now the authorised telehealth manager.", name=chosen.name),
                    "success",
                )
            return redirect(
                url_for("teams.organisation_team", organisation_id=organisation.id), 303
            )
    return _organisation_page(organisation, 400, manager_form=form)


def _member_of_organisation(organisation: Organisation, user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    clinic_ids = {c.id for c in organisation.clinics}
    in_it = any(m.organisation_id == organisation.id for m in user.organisation_memberships) or any(
        m.clinic_id in clinic_ids for m in user.clinic_memberships
    )
    if not in_it:
        abort(404)
    return user


@blueprint.route(
    "/organisations/<int:organisation_id>/people/<int:user_id>/remove", methods=["POST"]
)
@login_required
def remove_from_organisation(organisation_id: int, user_id: int):
    organisation = _organisation(organisation_id)
    user = _member_of_organisation(organisation, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        team.remove_from_organisation(organisation, user)
    except TeamProblem as problem:
        db.session.rollback()
        flash(str(problem), "error")
        return _organisation_page(organisation, 400)
    db.session.commit()
    flash(
        _(
            "%(name)s is removed from %(organisation)s.",
            name=user.name,
            organisation=organisation.name,
        ),
        "success",
    )
    return redirect(url_for("teams.organisation_team", organisation_id=organisation.id), 303)


# A clinic's team.


def _clinic(clinic_id: int) -> Clinic:
    clinic = db.session.get(Clinic, clinic_id)
    require(Permission.MANAGE_TEAM, clinic)
    return clinic


def _clinic_page(clinic: Clinic, status: int = 200, **forms):
    page_forms = {
        "invite_form": ClinicInviteForm(formdata=None),
        "role_form": ClinicRoleForm(formdata=None),
        "confirm_form": ConfirmForm(formdata=None),
        "changing": None,
    }
    page_forms.update(forms)
    page = render_template(
        "teams/clinic.html",
        clinic=clinic,
        members=team.members_of(clinic.organisation, clinic),
        pending=invitations.pending_invitations(clinic.organisation, clinic),
        manages_organisation=can(current_user, Permission.MANAGE_ORGANISATION_TEAM, clinic),
        **page_forms,
    )
    return page, status


@blueprint.route("/clinics/<int:clinic_id>/team")
@login_required
def clinic_team(clinic_id: int):
    return _clinic_page(_clinic(clinic_id))


@blueprint.route("/clinics/<int:clinic_id>/team/invitations", methods=["POST"])
@login_required
def invite_to_clinic(clinic_id: int):
    clinic = _clinic(clinic_id)
    form = ClinicInviteForm()
    if form.validate_on_submit():
        try:
            invited = invitations.invite(
                form.email.data, clinic.organisation, form.role.data, clinic, invited_by=_me()
            )
        except InvitationProblem as problem:
            db.session.rollback()
            form.email.errors.append(str(problem))
        else:
            db.session.commit()
            _flash_invited(invited)
            return redirect(url_for("teams.clinic_team", clinic_id=clinic.id), 303)
    return _clinic_page(clinic, 400, invite_form=form)


def _member_of_clinic(clinic: Clinic, user_id: int) -> User:
    user = db.session.get(User, user_id)
    held = user is not None and db.session.scalar(
        select(ClinicMembership.id).filter_by(clinic_id=clinic.id, user_id=user.id)
    )
    if not held:
        abort(404)
    return user


@blueprint.route("/clinics/<int:clinic_id>/people/<int:user_id>/role", methods=["POST"])
@login_required
def change_role(clinic_id: int, user_id: int):
    clinic = _clinic(clinic_id)
    user = _member_of_clinic(clinic, user_id)
    form = ClinicRoleForm()
    if form.validate_on_submit():
        try:
            changed = team.set_clinic_role(clinic, user, ClinicRole(form.role.data))
        except TeamProblem as problem:
            db.session.rollback()
            form.role.errors.append(str(problem))
        else:
            db.session.commit()
            if changed:
                flash(_("%(name)s's role is changed.", name=user.name), "success")
            return redirect(url_for("teams.clinic_team", clinic_id=clinic.id), 303)
    return _clinic_page(clinic, 400, role_form=form, changing=user.id)


@blueprint.route("/clinics/<int:clinic_id>/people/<int:user_id>/remove", methods=["POST"])
@login_required
def remove_from_clinic(clinic_id: int, user_id: int):
    clinic = _clinic(clinic_id)
    user = _member_of_clinic(clinic, user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        team.remove_from_clinic(clinic, user)
    except TeamProblem as problem:
        db.session.rollback()
        flash(str(problem), "error")
        return _clinic_page(clinic, 400)
    db.session.commit()
    flash(_("%(name)s is removed from %(clinic)s.", name=user.name, clinic=clinic.name), "success")
    return redirect(url_for("teams.clinic_team", clinic_id=clinic.id), 303)


# Pending invitations: resend, revoke.


def _managed_invitation(invitation_id: int) -> Invitation:
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None:
        abort(404)
    if invitation.clinic is not None:
        require(Permission.MANAGE_TEAM, invitation.clinic)
    else:
        require(Permission.MANAGE_ORGANISATION_TEAM, invitation.organisation)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    return invitation


def _team_page_of(invitation: Invitation):
    if can(current_user, Permission.MANAGE_ORGANISATION_TEAM, invitation.organisation):
        return redirect(
            url_for("teams.organisation_team", organisation_id=invitation.organisation_id), 303
        )
    return redirect(url_for("teams.clinic_team", clinic_id=invitation.clinic_id), 303)


@blueprint.route("/invitations/<int:invitation_id>/resend", methods=["POST"])
@login_required
def resend_invitation(invitation_id: int):
    invitation = _managed_invitation(invitation_id)
    try:
        invitations.resend(invitation, _me())
    except InvitationProblem as problem:
        db.session.rollback()
        flash(str(problem), "error")
    else:
        db.session.commit()
        flash(
            _(
                "The invitation was sent again to %(email)s; the earlier link no longer works.",
                email=invitation.email,
            ),
            "success",
        )
    return _team_page_of(invitation)


@blueprint.route("/invitations/<int:invitation_id>/revoke", methods=["POST"])
@login_required
def revoke_invitation(invitation_id: int):
    invitation = _managed_invitation(invitation_id)
    if invitations.revoke(invitation, _me()):
        db.session.commit()
        flash(
            _(
                "The invitation to %(email)s is withdrawn: its link no longer works.",
                email=invitation.email,
            ),
            "success",
        )
    else:
        db.session.rollback()
        flash(_("That invitation was already accepted or withdrawn."), "error")
    return _team_page_of(invitation)


# Accepting an invitation.


def _invitation_page(invitation, form, status: int = 200, problem: str | None = None):
    page = render_template(
        "teams/invitation.html", invitation=invitation, form=form, problem=problem
    )
    return page, status


@blueprint.route("/invitations/<token>", methods=["GET", "POST"], endpoint="invitation")
@limiter.limit(
    lambda: current_app.config["LOGIN_RATE_LIMIT"],
    methods=["POST"],
    key_func=lambda: f"invitation:{get_remote_address()}",
    deduct_when=lambda response: response.status_code != 303,
)
def invitation_page(token: str):
    """Shows where the invitation is to, and takes the new person's name and password (or,
    for an address that has an account, only their acceptance). Nothing of an unknown, used,
    withdrawn or expired invitation is shown."""
    invitation = invitations.find_invitation(token)
    refused = invitations.refusal(invitation)
    if refused is not None:
        return _invitation_page(None, None, *refused)
    existing = db.session.scalar(select(User).filter_by(email=invitation.email))
    form = AcceptForExistingAccountForm() if existing else AcceptInvitationForm()
    if not form.validate_on_submit():
        return _invitation_page(invitation, form, 400 if form.errors else 200)
    try:
        if existing:
            accepted = invitations.accept(token)
        else:
            accepted = invitations.accept(token, form.name.data.strip(), form.new_password.data)
    except InvitationProblem as problem:
        db.session.rollback()
        return _invitation_page(None, None, 410, str(problem))
    if accepted.new_account and two_factor.must_enrol(accepted.user):
        # A new admin sets up two-factor sign-in before their first page, as at any sign-in.
        two_factor.mark_password_passed(accepted.user, url_for("main.home"))
        db.session.commit()
        return redirect(url_for("auth.two_factor_enrol"), 303)
    if accepted.new_account:
        begin_sign_in(accepted.user)
        record_audit("user.signed_in", accepted.user, actor=accepted.user)
        db.session.commit()
        flash(_("Welcome to vcpay. You are signed in."), "success")
        return redirect(url_for("main.home"), 303)
    db.session.commit()
    if current_user.is_authenticated and current_user.id == accepted.user.id:
        flash(_("The invitation is accepted: your new role is shown below."), "success")
        return redirect(url_for("main.home"), 303)
    flash(
        _("The invitation is accepted. Sign in with your vcpay account to use your new role."),
        "success",
    )
    return redirect(url_for("auth.sign_in"), 303)


@blueprint.errorhandler(RateLimitExceeded)
def too_many_attempts(error: RateLimitExceeded):
    message = _("Too many attempts from your network. Wait a few minutes, then try again.")
    return _invitation_page(None, None, 429, message)
