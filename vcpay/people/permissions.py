"""Who may do what, where: every view checks a permission against a scope.

A scope is an organisation, a clinic, or anything that belongs to a clinic (a call, a
payment request), found through its ``clinic`` attribute. Someone with no role at all in
the scope gets 404, so pages of other organisations do not even reveal they exist; someone
with a role there but not the right one gets 403.
"""

import enum
from collections.abc import Iterable
from typing import Protocol

from flask import abort
from flask_login import current_user

from vcpay.people.models import Clinic, ClinicRole, Organisation, User


class Role(enum.StrEnum):
    ORGANISATION_ADMIN = "organisation_admin"
    TELEHEALTH_MANAGER = "telehealth_manager"
    CLINIC_ADMIN = "clinic_admin"
    CLINICIAN = "clinician"


class Permission(enum.StrEnum):
    VIEW_ORGANISATION = "view_organisation"
    REQUEST_ENABLEMENT = "request_enablement"
    ENDORSE_ENABLEMENT = "endorse_enablement"
    MANAGE_CLIENT_PAYMENTS = "manage_client_payments"
    REFUND_PAYMENT = "refund_payment"
    START_CALL = "start_call"
    # The Payments page of a clinic: its admins see every payment there, its clinicians
    # only the requests they made themselves (``sees_every_payment`` tells the two apart).
    VIEW_PAYMENTS = "view_payments"
    VIEW_CLINIC_PAYMENTS = "view_clinic_payments"
    RESEND_RECEIPT = "resend_receipt"
    # The audit log: an organisation admin reads their organisation's, a clinic admin their
    # clinic's (vcpay/audit/reading.py).
    VIEW_AUDIT_LOG = "view_audit_log"
    # A clinic's team (its people, their roles, invitations): its clinic admins and the
    # organisation's admins. The organisation's team (its clinics, its admins, the
    # telehealth manager): its organisation admins only.
    MANAGE_TEAM = "manage_team"
    MANAGE_ORGANISATION_TEAM = "manage_organisation_team"
    # Resetting someone's two-factor sign-in (vcpay/people/views.py): an organisation admin
    # for anyone with a role there, a clinic admin for the people of their clinic.
    RESET_TWO_FACTOR = "reset_two_factor"


ADMINS = frozenset({Role.ORGANISATION_ADMIN, Role.CLINIC_ADMIN})

# The roles that grant each permission within its scope.
GRANTS: dict[Permission, frozenset[Role]] = {
    Permission.VIEW_ORGANISATION: frozenset(Role),
    Permission.REQUEST_ENABLEMENT: ADMINS,
    Permission.ENDORSE_ENABLEMENT: frozenset({Role.TELEHEALTH_MANAGER}),
    Permission.MANAGE_CLIENT_PAYMENTS: ADMINS,
    Permission.REFUND_PAYMENT: ADMINS,
    Permission.START_CALL: frozenset({Role.CLINICIAN}),
    Permission.VIEW_PAYMENTS: ADMINS | {Role.CLINICIAN},
    Permission.VIEW_CLINIC_PAYMENTS: ADMINS,
    Permission.RESEND_RECEIPT: ADMINS,
    Permission.VIEW_AUDIT_LOG: ADMINS,
    Permission.MANAGE_TEAM: ADMINS,
    Permission.MANAGE_ORGANISATION_TEAM: frozenset({Role.ORGANISATION_ADMIN}),
    Permission.RESET_TWO_FACTOR: ADMINS,
}


class BelongsToClinic(Protocol):
    clinic: Clinic


Scope = Organisation | Clinic | BelongsToClinic


def _organisation_roles(user: User, organisation_id: int) -> set[Role]:
    roles: set[Role] = set()
    for membership in user.organisation_memberships:
        if membership.organisation_id == organisation_id:
            roles.add(Role.ORGANISATION_ADMIN)
            if membership.is_telehealth_manager:
                roles.add(Role.TELEHEALTH_MANAGER)
    return roles


def _clinic_role(role: str) -> Role:
    return Role.CLINIC_ADMIN if role == ClinicRole.CLINIC_ADMIN else Role.CLINICIAN


def roles_in(user: User, scope: Scope) -> set[Role]:
    """The roles ``user`` holds in ``scope``; organisation roles reach all its clinics."""
    if user is None or not user.is_authenticated or not user.is_active:
        return set()
    if isinstance(scope, Organisation):
        roles = _organisation_roles(user, scope.id)
        roles.update(
            _clinic_role(m.role)
            for m in user.clinic_memberships
            if m.clinic.organisation_id == scope.id
        )
        return roles
    clinic = scope if isinstance(scope, Clinic) else scope.clinic
    roles = _organisation_roles(user, clinic.organisation_id)
    roles.update(_clinic_role(m.role) for m in user.clinic_memberships if m.clinic_id == clinic.id)
    return roles


def can(user: User, permission: Permission, scope: Scope) -> bool:
    return bool(roles_in(user, scope) & GRANTS[permission])


def require(permission: Permission, scope: Scope | None) -> None:
    """Abort with 404 when the scope is missing or foreign to the user, 403 when the role is."""
    if scope is None:
        abort(404)
    roles = roles_in(current_user, scope)
    if not roles:
        abort(404)
    if not roles & GRANTS[permission]:
        abort(403)


def require_over_person(permission: Permission, person: User | None) -> Scope:
    """Like ``require``, for an act on another person: allowed in a scope where the person has
    a role and the actor holds ``permission`` over it. Over an organisation admin that takes an
    organisation role; over a clinic's people, a role in the clinic or its organisation. 404
    when the person is nobody the actor shares such a scope with, 403 for the wrong role.
    Returns the scope that allowed it."""
    if person is None:
        abort(404)
    org_roles = {Role.ORGANISATION_ADMIN, Role.TELEHEALTH_MANAGER}
    scopes: list[tuple[Scope, set[Role]]] = [
        (m.organisation, roles_in(current_user, m.organisation) & org_roles)
        for m in person.organisation_memberships
    ]
    scopes += [(m.clinic, roles_in(current_user, m.clinic)) for m in person.clinic_memberships]
    for scope, roles in scopes:
        if roles & GRANTS[permission]:
            return scope
    if not any(roles for _scope, roles in scopes):
        abort(404)
    abort(403)


def clinics_where(user: User, permission: Permission) -> list[Clinic]:
    """Every clinic in which ``user`` holds ``permission``, by organisation and name."""
    candidates: dict[int, Clinic] = {}
    for membership in user.organisation_memberships:
        candidates.update((c.id, c) for c in membership.organisation.clinics)
    candidates.update((m.clinic_id, m.clinic) for m in user.clinic_memberships)
    allowed = (c for c in candidates.values() if can(user, permission, c))
    return sorted(allowed, key=lambda c: (c.organisation.name, c.name))


def organisations_where(user: User, permission: Permission) -> list[Organisation]:
    candidates: dict[int, Organisation] = {
        m.organisation_id: m.organisation for m in user.organisation_memberships
    }
    candidates.update(
        (m.clinic.organisation_id, m.clinic.organisation) for m in user.clinic_memberships
    )
    allowed = (o for o in candidates.values() if can(user, permission, o))
    return sorted(allowed, key=lambda o: o.name)


def holds_any(user: User, roles: Iterable[Role]) -> bool:
    """Whether ``user`` holds any of ``roles`` anywhere, for navigation."""
    wanted = set(roles)
    if wanted & {Role.ORGANISATION_ADMIN} and user.organisation_memberships:
        return True
    if wanted & {Role.TELEHEALTH_MANAGER} and any(
        m.is_telehealth_manager for m in user.organisation_memberships
    ):
        return True
    return any(_clinic_role(m.role) in wanted for m in user.clinic_memberships)
