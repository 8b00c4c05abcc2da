"""Recording audit entries. The entry joins the caller's transaction: it is kept only if the
change it describes is committed."""

from typing import Any

from flask import has_request_context, request
from flask_login import current_user

from vcpay.audit.models import AuditEntry
from vcpay.extensions import db
from vcpay.people.models import Clinic, Organisation, User


def _scope_of(target: Any) -> tuple[int | None, int | None]:
    if isinstance(target, Organisation):
        return target.id, None
    if isinstance(target, Clinic):
        return target.organisation_id, target.id
    clinic = getattr(target, "clinic", None)
    if isinstance(clinic, Clinic):
        return clinic.organisation_id, clinic.id
    organisation = getattr(target, "organisation", None)
    if isinstance(organisation, Organisation):
        return organisation.id, None
    return None, None


def _acting_user() -> User | None:
    try:
        user = current_user._get_current_object()
    except RuntimeError:  # outside a request: a worker or the CLI
        return None
    return user if getattr(user, "is_authenticated", False) else None


def _client_address() -> str | None:
    if not has_request_context():
        return None
    return (request.remote_addr or "")[:45] or None


def record_audit(
    action: str,
    target: Any,
    actor: User | None = None,
    within: Organisation | Clinic | None = None,
    **details: Any,
) -> AuditEntry:
    """Add an audit entry for ``action`` on ``target`` (a model instance with an ``id``).

    ``actor`` defaults to the signed-in user; pass it explicitly in workers. ``within`` puts
    an entry about something of no organisation of its own (a person) on the audit page of
    the organisation or clinic the action was taken in.
    """
    if target.id is None:
        db.session.flush()
    organisation_id, clinic_id = _scope_of(within if within is not None else target)
    entry = AuditEntry(
        actor=actor or _acting_user(),
        action=action,
        object_type=type(target).__name__,
        object_id=str(target.id),
        organisation_id=organisation_id,
        clinic_id=clinic_id,
        details=details,
        address=_client_address(),
    )
    db.session.add(entry)
    return entry
