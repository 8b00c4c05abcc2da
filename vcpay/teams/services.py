"""Building a team: clinics, the roles people hold in them, and who is the organisation's
authorised telehealth manager.

Two rules hold whatever the page: a clinic that has a clinic admin keeps at least one, and an
organisation keeps at least one organisation admin, and exactly one telehealth manager once it
has one. Each change that could break them first writes the clinic's or organisation's row (an
update that changes nothing: a row lock on PostgreSQL, the write lock on SQLite, which begins
its transaction at the first write) and only then counts, in the same transaction, so two
admins removing each other at once cannot both succeed: the second counts after the first
committed. Services flush; the caller commits. Longer than most modules because each rule is
checked by every change that could break it, and those checks belong beside one another.
"""

import secrets
from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select, update

from vcpay.audit.services import record_audit
from vcpay.extensions import db
from vcpay.mail.services import queue_email
from vcpay.people.models import (
    Clinic,
    ClinicMembership,
    ClinicRole,
    Organisation,
    OrganisationMembership,
    User,
)
from vcpay.people.services import revoke_all_sign_in_sessions

MANAGER_CHANGED_SUBJECT = _l("vcpay: your organisation's authorised telehealth manager")


class TeamProblem(Exception):
    """Why a change to a team was refused, in words for the person (``str()``)."""


@dataclass
class Member:
    """A person of a team and the roles they hold there."""

    user: User
    organisation_admin: bool = False
    telehealth_manager: bool = False
    clinic_roles: dict[int, set[str]] = field(default_factory=dict)  # clinic id: roles


def _lock_clinic(clinic: Clinic) -> None:
    db.session.execute(
        update(Clinic)
        .where(Clinic.id == clinic.id)
        .values(name=Clinic.name)
        .execution_options(synchronize_session=False)
    )


def _lock_organisation(organisation: Organisation) -> None:
    db.session.execute(
        update(Organisation)
        .where(Organisation.id == organisation.id)
        .values(name=Organisation.name)
        .execution_options(synchronize_session=False)
    )


def members_of(organisation: Organisation, clinic: Clinic | None = None) -> list[Member]:
    """Everyone with a role in the organisation (only ``clinic``'s people when given), by
    name, with their roles."""
    members: dict[int, Member] = {}
    if clinic is None:
        for membership in db.session.scalars(
            select(OrganisationMembership).filter_by(organisation_id=organisation.id)
        ):
            member = members.setdefault(membership.user_id, Member(membership.user))
            member.organisation_admin = True
            member.telehealth_manager = membership.is_telehealth_manager
        clinic_ids = [c.id for c in organisation.clinics]
    else:
        clinic_ids = [clinic.id]
    for membership in db.session.scalars(
        select(ClinicMembership).where(ClinicMembership.clinic_id.in_(clinic_ids))
    ):
        member = members.setdefault(membership.user_id, Member(membership.user))
        member.clinic_roles.setdefault(membership.clinic_id, set()).add(membership.role)
    return sorted(members.values(), key=lambda m: (m.user.name.lower(), m.user.id))


def create_clinic(organisation: Organisation, name: str, time_zone: str) -> Clinic:
    name = name.strip()
    _refuse_taken_name(organisation, name)
    clinic = Clinic(organisation=organisation, name=name, time_zone=time_zone)
    db.session.add(clinic)
    db.session.flush()
    record_audit("clinic.created", clinic, name=name, time_zone=time_zone)
    return clinic


def rename_clinic(clinic: Clinic, name: str) -> bool:
    """False when the name is the one it has."""
    name = name.strip()
    if name == clinic.name:
        return False
    _refuse_taken_name(clinic.organisation, name, but=clinic)
    before = clinic.name
    clinic.name = name
    db.session.flush()
    record_audit("clinic.renamed", clinic, before=before, after=name)
    return True


def _refuse_taken_name(organisation: Organisation, name: str, but: Clinic | None = None) -> None:
    taken = select(Clinic.id).where(
        Clinic.organisation_id == organisation.id, func.lower(Clinic.name) == name.lower()
    )
    if but is not None:
        taken = taken.where(Clinic.id != but.id)
    if db.session.scalar(taken) is not None:
        raise TeamProblem(_l("This organisation already has a clinic named %(name)s.", name=name))


def _clinic_admins_but(clinic: Clinic, user: User) -> int:
    return db.session.scalar(
        select(func.count(ClinicMembership.id)).where(
            ClinicMembership.clinic_id == clinic.id,
            ClinicMembership.role == ClinicRole.CLINIC_ADMIN.value,
            ClinicMembership.user_id != user.id,
        )
    )


def _refuse_last_clinic_admin(clinic: Clinic, user: User) -> None:
    """Raises when ``user`` is an admin of ``clinic`` and nobody else is. Lock first."""
    is_admin = db.session.scalar(
        select(ClinicMembership.id).filter_by(
            clinic_id=clinic.id, user_id=user.id, role=ClinicRole.CLINIC_ADMIN.value
        )
    )
    if is_admin is not None and _clinic_admins_but(clinic, user) == 0:
        raise TeamProblem(
            _l(
                "%(name)s is the only clinic admin of %(clinic)s: make someone else a clinic "
                "admin there first.",
                name=user.name,
                clinic=clinic.name,
            )
        )


def _clinic_memberships(clinic: Clinic, user: User) -> list[ClinicMembership]:
    return list(
        db.session.scalars(select(ClinicMembership).filter_by(clinic_id=clinic.id, user_id=user.id))
    )


def set_clinic_role(clinic: Clinic, user: User, role: ClinicRole) -> bool:
    """``user`` holds ``role`` in ``clinic`` and no other role there; they must hold one there
    already. The last clinic admin cannot become a clinician. False when nothing changed."""
    _lock_clinic(clinic)
    held = _clinic_memberships(clinic, user)
    if not held:
        raise TeamProblem(_l("%(name)s has no role in this clinic.", name=user.name))
    before = sorted(m.role for m in held)
    if before == [role.value]:
        return False
    if role != ClinicRole.CLINIC_ADMIN:
        _refuse_last_clinic_admin(clinic, user)
    db.session.execute(
        delete(ClinicMembership).where(
            ClinicMembership.clinic_id == clinic.id,
            ClinicMembership.user_id == user.id,
            ClinicMembership.role != role.value,
        )
    )
    if role.value not in before:
        db.session.add(ClinicMembership(user_id=user.id, clinic_id=clinic.id, role=role.value))
    db.session.flush()
    db.session.expire(user, ["clinic_memberships"])
    record_audit("team.role_changed", clinic, user=user.id, before=before, after=[role.value])
    return True


def remove_from_clinic(clinic: Clinic, user: User) -> None:
    """Every role of ``user`` in ``clinic`` ends (not the last clinic admin's)."""
    _lock_clinic(clinic)
    held = _clinic_memberships(clinic, user)
    if not held:
        raise TeamProblem(_l("%(name)s has no role in this clinic.", name=user.name))
    _refuse_last_clinic_admin(clinic, user)
    roles = sorted(m.role for m in held)
    db.session.execute(
        delete(ClinicMembership).where(
            ClinicMembership.clinic_id == clinic.id, ClinicMembership.user_id == user.id
        )
    )
    db.session.flush()
    record_audit("team.removed", clinic, user=user.id, roles=roles)
    _sign_out_if_roleless(user)


def remove_from_organisation(organisation: Organisation, user: User) -> None:
    """Every role of ``user`` in the organisation and its clinics ends. Refused for its last
    organisation admin, its telehealth manager (choose another first) and the last clinic
    admin of any of its clinics."""
    _lock_organisation(organisation)
    admin = db.session.scalar(
        select(OrganisationMembership).filter_by(organisation_id=organisation.id, user_id=user.id)
    )
    clinic_ids = [c.id for c in organisation.clinics]
    clinic_roles = list(
        db.session.scalars(
            select(ClinicMembership).where(
                ClinicMembership.user_id == user.id, ClinicMembership.clinic_id.in_(clinic_ids)
            )
        )
    )
    if admin is None and not clinic_roles:
        raise TeamProblem(_l("%(name)s has no role in this organisation.", name=user.name))
    if admin is not None:
        if admin.is_telehealth_manager:
            raise TeamProblem(
                _l(
                    "%(name)s is the authorised telehealth manager: choose another one first.",
                    name=user.name,
                )
            )
        others = db.session.scalar(
            select(func.count(OrganisationMembership.id)).where(
                OrganisationMembership.organisation_id == organisation.id,
                OrganisationMembership.user_id != user.id,
            )
        )
        if others == 0:
            raise TeamProblem(
                _l("%(name)s is the only organisation admin and cannot be removed.", name=user.name)
            )
    for clinic in {m.clinic for m in clinic_roles}:
        _lock_clinic(clinic)
        _refuse_last_clinic_admin(clinic, user)
    if admin is not None:
        db.session.delete(admin)
    for membership in clinic_roles:
        db.session.delete(membership)
    db.session.flush()
    db.session.expire(user, ["organisation_memberships", "clinic_memberships"])
    record_audit(
        "team.removed",
        organisation,
        user=user.id,
        organisation_admin=admin is not None,
        clinics=sorted({m.clinic_id for m in clinic_roles}),
    )
    _sign_out_if_roleless(user)


def _sign_out_if_roleless(user: User) -> None:
    """Someone left with no role anywhere is signed out of every browser."""
    db.session.expire(user, ["organisation_memberships", "clinic_memberships"])
    roles = db.session.scalar(
        select(func.count(OrganisationMembership.id)).filter_by(user_id=user.id)
    ) + db.session.scalar(select(func.count(ClinicMembership.id)).filter_by(user_id=user.id))
    if roles == 0:
        revoke_all_sign_in_sessions(user)


def set_telehealth_manager(organisation: Organisation, user: User) -> bool:
    """Makes ``user``, an organisation admin, the organisation's one authorised telehealth
    manager: the old one stops being it in the same transaction, before the new one starts,
    so the one-manager index never sees two. Both are emailed. False when nothing changed."""
    _lock_organisation(organisation)
    chosen = db.session.scalar(
        select(OrganisationMembership).filter_by(organisation_id=organisation.id, user_id=user.id)
    )
    if chosen is None:
        raise TeamProblem(_l("Only an organisation admin can be the telehealth manager."))
    if chosen.is_telehealth_manager:
        return False
    old = db.session.scalar(
        select(OrganisationMembership).filter_by(
            organisation_id=organisation.id, is_telehealth_manager=True
        )
    )
    db.session.execute(
        update(OrganisationMembership)
        .where(
            OrganisationMembership.organisation_id == organisation.id,
            OrganisationMembership.is_telehealth_manager.is_(True),
        )
        .values(is_telehealth_manager=False)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(OrganisationMembership)
        .where(OrganisationMembership.id == chosen.id)
        .values(is_telehealth_manager=True)
        .execution_options(synchronize_session=False)
    )
    db.session.expire_all()
    old_user = old.user if old is not None else None
    record_audit(
        "organisation.telehealth_manager_changed",
        organisation,
        before=old_user.id if old_user else None,
        after=user.id,
    )
    change = secrets.token_hex(8)
    for person, is_new in ((user, True), (old_user, False)):
        if person is None:
            continue
        queue_email(
            f"telehealth-manager:{organisation.id}:{change}:{person.id}",
            person.email,
            MANAGER_CHANGED_SUBJECT,
            "telehealth_manager_changed",
            name=person.name,
            organisation=organisation,
            is_new=is_new,
            new_manager=user,
            old_manager=old_user,
        )
    return True
