"""Inviting people: the emailed link, resending and revoking it, and accepting it once.

A link carries a random token; only its SHA-256 is stored, so a copy of the table lets nobody
in. It works for ``VCPAY_INVITATION_DAYS`` (30 by default) and once: accepting is a guarded
update (still unaccepted, unrevoked and unexpired), so two uses at once cannot both win.
Inviting the same address to the same place while an invitation is pending sends that one
again with a new token (the old link stops working) rather than making a second.

Services flush; the caller (a view, or a CLI command) commits. Longer than most modules
because an invitation's whole life (made, sent, sent again, withdrawn, refused, accepted) is
one story, best read in one place.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from vcpay.audit.services import record_audit
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.inputs import has_control_character
from vcpay.mail.services import queue_email
from vcpay.people.models import (
    Clinic,
    ClinicMembership,
    ClinicRole,
    Organisation,
    OrganisationMembership,
    User,
)
from vcpay.people.services import (
    add_clinic_role,
    add_organisation_admin,
    create_user,
    find_user_by_email,
    normalise_email,
)
from vcpay.public_urls import public_url_for
from vcpay.teams.models import Invitation, InvitedRole

INVITATION_SUBJECT = _l("You are invited to vcpay")
ROLE_NAMES = {
    InvitedRole.ORGANISATION_ADMIN: _l("organisation admin"),
    InvitedRole.CLINIC_ADMIN: _l("clinic admin"),
    InvitedRole.CLINICIAN: _l("clinician"),
}


class InvitationProblem(Exception):
    """Why an invitation cannot be made or used, in words for the person (``str()``)."""


@dataclass(frozen=True)
class Invited:
    invitation: Invitation
    link: str  # the absolute link emailed; shown to nobody else
    resent: bool  # an invitation already pending was sent again


@dataclass(frozen=True)
class Accepted:
    user: User
    new_account: bool  # False: the role was added to an account that existed


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def role_name(role: str) -> str:
    return str(ROLE_NAMES[InvitedRole(role)])


def _pending():
    return (
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > utcnow(),
    )


def pending_invitations(organisation: Organisation, clinic: Clinic | None = None):
    """The organisation's pending invitations (only ``clinic``'s when given), newest first."""
    query = select(Invitation).where(Invitation.organisation_id == organisation.id, *_pending())
    if clinic is not None:
        query = query.where(Invitation.clinic_id == clinic.id)
    return list(db.session.scalars(query.order_by(Invitation.id.desc())))


def find_invitation(token: str) -> Invitation | None:
    """The invitation a link's token names, whatever its state; None for an unknown token."""
    if not token or len(token) > 100:
        return None
    return db.session.scalar(select(Invitation).where(Invitation.token_hash == token_hash(token)))


def _holds(user: User, organisation: Organisation, clinic: Clinic | None, role: str) -> bool:
    if role == InvitedRole.ORGANISATION_ADMIN:
        return any(m.organisation_id == organisation.id for m in user.organisation_memberships)
    return any(m.clinic_id == clinic.id and m.role == role for m in user.clinic_memberships)


def invite(
    email: str,
    organisation: Organisation,
    role: InvitedRole | str,
    clinic: Clinic | None = None,
    invited_by: User | None = None,
) -> Invited:
    """Emails ``email`` a link to join ``organisation`` as ``role``: ``organisation_admin``
    (no ``clinic``) or ``clinic_admin``/``clinician`` of ``clinic``, one of its clinics.

    ``invited_by`` is the admin who asked, or None for the operator (a CLI command). A pending
    invitation of the same address to the same place is sent again (new token, new expiry,
    the role given now) instead. Raises ``InvitationProblem`` when the place does not fit the
    role or the person already holds that role there. The caller commits.
    """
    role = InvitedRole(role)
    if (role == InvitedRole.ORGANISATION_ADMIN) != (clinic is None):
        raise InvitationProblem(
            _l(
                "Choose a clinic for a clinic admin or clinician, and none for an "
                "organisation admin."
            )
        )
    if clinic is not None and clinic.organisation_id != organisation.id:
        raise InvitationProblem(_l("That clinic is not one of this organisation's."))
    email = normalise_email(email)
    if not 3 <= len(email) <= 254 or "@" not in email or has_control_character(email):
        raise InvitationProblem(_l("Enter an email address such as sam@example.org."))
    existing_user = find_user_by_email(email)
    if existing_user is not None and _holds(existing_user, organisation, clinic, role):
        raise InvitationProblem(_l("%(email)s already has that role there.", email=email))
    invitation = db.session.scalar(
        select(Invitation)
        .where(
            Invitation.email == email,
            Invitation.organisation_id == organisation.id,
            Invitation.clinic_id.is_(None) if clinic is None else Invitation.clinic_id == clinic.id,
            *_pending(),
        )
        .with_for_update()
    )
    resent = invitation is not None
    if invitation is None:
        invitation = Invitation(email=email, organisation=organisation, clinic=clinic)
        db.session.add(invitation)
    invitation.role = role.value
    invitation.invited_by = invited_by
    link = _send(invitation, existing_user)
    record_audit(
        "team.invited",
        invitation,
        actor=invited_by,
        email=email,
        role=role.value,
        resent=resent,
    )
    return Invited(invitation, link, resent)


def resend(invitation: Invitation, actor: User | None = None) -> str:
    """Sends a pending invitation again with a new link (the old one stops working) and a
    new expiry; raises ``InvitationProblem`` when it is no longer pending. The caller commits."""
    if not invitation.is_pending:
        raise InvitationProblem(_l("That invitation was already accepted, revoked or expired."))
    invitation.invited_by = actor or invitation.invited_by
    link = _send(invitation, find_user_by_email(invitation.email))
    record_audit("team.invitation_resent", invitation, actor=actor, email=invitation.email)
    return link


def revoke(invitation: Invitation, actor: User | None = None) -> bool:
    """Its link stops working; False when it was already accepted or revoked."""
    ended = db.session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation.id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if ended != 1:
        return False
    db.session.expire(invitation, ["revoked_at"])
    record_audit("team.invitation_revoked", invitation, actor=actor, email=invitation.email)
    return True


def _send(invitation: Invitation, existing_user: User | None) -> str:
    """A new token (and expiry) for ``invitation``, emailed; the link."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    invitation.token_hash = token_hash(token)
    invitation.expires_at = now + timedelta(days=current_app.config["INVITATION_DAYS"])
    invitation.last_sent_at = now
    db.session.flush()
    link = public_url_for("teams.invitation", token=token)
    inviter = invitation.invited_by
    # The invitee's language where vcpay knows it, else the inviter's, else the default.
    locale = (existing_user.locale if existing_user else None) or (
        inviter.locale if inviter else None
    )
    queue_email(
        f"invitation:{invitation.id}:{invitation.token_hash[:16]}",
        invitation.email,
        INVITATION_SUBJECT,
        "invitation",
        locale=locale,
        organisation=invitation.organisation,
        clinic=invitation.clinic,
        role=ROLE_NAMES[InvitedRole(invitation.role)],
        inviter=inviter,
        expires_at=invitation.expires_at,
        link=link,
        has_account=existing_user is not None,
    )
    return link


def refusal(invitation: Invitation | None) -> tuple[int, str] | None:
    """Why a link cannot be used (a status and words for the page), or None when it can."""
    if invitation is None:
        return 404, str(_l("This invitation link is not known. Check that it was copied whole."))
    state = invitation.state
    if state == "accepted":
        return 410, str(
            _l("This invitation was already accepted. Sign in with the account it made.")
        )
    if state == "revoked":
        return 410, str(
            _l("This invitation was withdrawn. Ask the person who invited you for a new one.")
        )
    if state == "expired":
        inviter = invitation.invited_by
        who = inviter.name if inviter else str(_l("an administrator of your organisation"))
        return 410, str(
            _l("This invitation has expired. Ask %(who)s to invite you again.", who=who)
        )
    return None


def accept(token: str, name: str | None = None, password: str | None = None) -> Accepted:
    """Uses the invitation ``token`` names, once: a new account with ``name`` and
    ``password``, or (when the address has an account already) the role added to it, the
    password untouched. Raises ``InvitationProblem`` (with the words to show) for a link that
    is unknown, used, revoked or expired. The caller commits, and signs a new account in."""
    invitation = find_invitation(token)
    problem = refusal(invitation)
    if problem is not None:
        raise InvitationProblem(problem[1])
    user = find_user_by_email(invitation.email)
    if user is None and (not name or not password):
        raise InvitationProblem(_l("Enter your name and a password."))
    now = utcnow()
    won = db.session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation.id,
            Invitation.token_hash == token_hash(token),
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
        )
        .values(accepted_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if won != 1:
        db.session.expire(invitation)
        problem = refusal(invitation) or (410, str(_l("This invitation was already used.")))
        raise InvitationProblem(problem[1])
    db.session.expire(invitation, ["accepted_at"])
    new_account = user is None
    if user is None:
        user = create_user(invitation.email, name, password)
        db.session.flush()
    _grant(user, invitation)
    record_audit(
        "team.invitation_accepted",
        invitation,
        actor=user,
        user=user.id,
        role=invitation.role,
        new_account=new_account,
    )
    return Accepted(user, new_account)


def _grant(user: User, invitation: Invitation) -> None:
    if invitation.role == InvitedRole.ORGANISATION_ADMIN:
        held = db.session.scalar(
            select(OrganisationMembership).filter_by(
                user_id=user.id, organisation_id=invitation.organisation_id
            )
        )
        if held is None:
            held = add_organisation_admin(user, invitation.organisation)
            db.session.flush()
        _manager_if_none(held, user)
    else:
        held = db.session.scalar(
            select(ClinicMembership).filter_by(
                user_id=user.id, clinic_id=invitation.clinic_id, role=invitation.role
            )
        )
        if held is None:
            add_clinic_role(user, invitation.clinic, ClinicRole(invitation.role))
    db.session.flush()


def _manager_if_none(membership: OrganisationMembership, user: User) -> None:
    """An organisation without an authorised telehealth manager (a new one, its first admin
    accepting) gets this admin as it, so its Payment Gateway requests can be endorsed. Of two
    first admins accepting at once, the one-manager index keeps the first; the other is an
    admin only, and the manager can hand the role on from the team page."""
    other = aliased(OrganisationMembership)  # not the updated row: the organisation's others
    try:
        with db.session.begin_nested():
            made = db.session.execute(
                update(OrganisationMembership)
                .where(
                    OrganisationMembership.id == membership.id,
                    ~select(other.id)
                    .where(
                        other.organisation_id == membership.organisation_id,
                        other.is_telehealth_manager.is_(True),
                    )
                    .exists(),
                )
                .values(is_telehealth_manager=True)
                .execution_options(synchronize_session=False)
            ).rowcount
    except IntegrityError:
        return
    if made:
        db.session.expire(membership, ["is_telehealth_manager"])
        record_audit(
            "organisation.telehealth_manager_changed",
            membership.organisation,
            actor=user,
            before=None,
            after=user.id,
            first_admin=True,
        )
