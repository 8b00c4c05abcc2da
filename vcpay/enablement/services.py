"""The life of an enablement request inside vcpay: drafting, endorsing, sending back,
withdrawing. Functions change the session and flush; the view or task commits once."""

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from vcpay.audit.services import record_audit
from vcpay.database import utcnow
from vcpay.enablement.models import (
    EDITABLE_STATES,
    OPEN_STATES,
    EnablementRequest,
    RequestedClinic,
    RequestEvent,
    RequestState,
)
from vcpay.extensions import db
from vcpay.mail.services import queue_to_each
from vcpay.people.models import Clinic, ClinicRole, Organisation, User
from vcpay.people.permissions import Permission, can
from vcpay.public_urls import public_url_for
from vcpay.transactions import after_commit


class EnablementError(Exception):
    """A request cannot move as asked; the message is for the person who asked."""


ALREADY_SENT = _l("This request has already been sent.")
NOT_WAITING = _l("This request is not waiting for endorsement.")


@dataclass
class ClinicChoice:
    clinic_id: int
    has_stripe_account: bool
    stripe_account_hint: str


def move_to(request: EnablementRequest, state: RequestState) -> bool:
    """Set ``state`` only if the request is still in the state read here: a guarded update, so
    of two changes arriving together (a withdrawal and Jira's decision, two clicks) one wins,
    on SQLite as on PostgreSQL. Otherwise the request is read again and False returned."""
    moved = db.session.execute(
        update(EnablementRequest)
        .where(EnablementRequest.id == request.id, EnablementRequest.state == request.state)
        .values(state=state.value)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        db.session.refresh(request)
        return False
    set_committed_value(request, "state", state.value)
    return True


def _move_or_refuse(request: EnablementRequest, state: RequestState, refusal) -> None:
    if not move_to(request, state):
        raise EnablementError(refusal)


def add_event(request: EnablementRequest, kind: str, actor=None, code: str = "", **params) -> None:
    """A timeline entry, stored as its code and parameters: each reader sees it in their own
    language (vcpay.enablement.wording). ``code`` is the wording when it differs from ``kind``."""
    if code:
        params["code"] = code
    request.events.append(RequestEvent(kind=kind, params=params, actor=actor))


def clinics_in_open_requests(organisation: Organisation, excluding: int | None = None) -> set[int]:
    query = (
        select(RequestedClinic.clinic_id)
        .join(EnablementRequest)
        .where(
            EnablementRequest.organisation_id == organisation.id,
            EnablementRequest.state.in_([s.value for s in OPEN_STATES]),
        )
    )
    if excluding is not None:
        query = query.where(EnablementRequest.id != excluding)
    return set(db.session.scalars(query))


def requestable_clinics(
    user: User, organisation: Organisation, request: EnablementRequest | None = None
) -> list[Clinic]:
    """Clinics ``user`` may ask for: theirs to manage, gateway off, in no other open request."""
    busy = clinics_in_open_requests(organisation, excluding=request.id if request else None)
    return [
        clinic
        for clinic in organisation.clinics
        if not clinic.gateway_enabled
        and clinic.id not in busy
        and can(user, Permission.MANAGE_CLIENT_PAYMENTS, clinic)
    ]


def can_see_request(user: User, request: EnablementRequest) -> bool:
    """Organisation admins see all their organisation's requests; clinic admins see those
    that name a clinic they manage."""
    if not can(user, Permission.REQUEST_ENABLEMENT, request.organisation):
        return False
    if any(m.organisation_id == request.organisation_id for m in user.organisation_memberships):
        return True
    return any(can(user, Permission.MANAGE_CLIENT_PAYMENTS, rc.clinic) for rc in request.clinics)


def may_withdraw(user: User, request: EnablementRequest) -> bool:
    """The requester, or an admin of the whole organisation."""
    if request.requester_id == user.id:
        return True
    return any(m.organisation_id == request.organisation_id for m in user.organisation_memberships)


def save_draft(
    request: EnablementRequest,
    choices: list[ClinicChoice],
    contact: dict[str, str],
    terms_accepted: bool,
    notes: str,
) -> EnablementRequest:
    if request.state not in EDITABLE_STATES:
        raise EnablementError(_l("This request has been sent and can no longer be changed."))
    request.contact_name = contact["name"].strip()
    request.contact_email = contact["email"].strip().lower()
    request.contact_phone = contact["phone"].strip()
    request.notes = notes.strip()
    request.terms_accepted_at = (request.terms_accepted_at or utcnow()) if terms_accepted else None
    _replace_clinics(request, choices)
    if request.id is None:
        db.session.add(request)
        add_event(request, "drafted", actor=request.requester)
    db.session.flush()
    return request


def _replace_clinics(request: EnablementRequest, choices: list[ClinicChoice]) -> None:
    wanted = {choice.clinic_id: choice for choice in choices}
    for requested in list(request.clinics):
        if requested.clinic_id not in wanted:
            request.clinics.remove(requested)
    present = {requested.clinic_id: requested for requested in request.clinics}
    for clinic_id, choice in wanted.items():
        requested = present.get(clinic_id) or RequestedClinic(clinic_id=clinic_id)
        requested.has_stripe_account = choice.has_stripe_account
        requested.stripe_account_hint = choice.stripe_account_hint.strip()
        if clinic_id not in present:
            request.clinics.append(requested)


def submit(request: EnablementRequest, actor: User) -> None:
    """Send to the service desk, or to the telehealth manager when someone else asks."""
    if request.state not in EDITABLE_STATES:
        raise EnablementError(ALREADY_SENT)
    request.submitted_at = utcnow()
    manager = request.organisation.telehealth_manager
    if manager is not None and manager.id == actor.id:
        _endorse(request, actor, "sent_directly", ALREADY_SENT)
        return
    if manager is None:
        raise EnablementError(
            _l(
                "Your organisation has no authorised telehealth manager to approve this "
                "request. Ask your organisation's administrators to name one."
            )
        )
    _move_or_refuse(request, RequestState.AWAITING_ENDORSEMENT, ALREADY_SENT)
    request.sent_back_reason = None
    add_event(request, "submitted", actor=actor, name=manager.name)
    record_audit("enablement.submitted", request, actor=actor)
    queue_to_each(
        f"enablement:{request.id}:endorse:{len(request.events)}",
        [manager.email],
        _l(
            "Please review a Payment Gateway request for %(organisation)s",
            organisation=request.organisation.name,
        ),
        "endorsement_needed",
        request=request,
        manager=manager,
        link=_link(request),
    )


def endorse(request: EnablementRequest, manager: User) -> None:
    _require_manager(request, manager)
    if request.state != RequestState.AWAITING_ENDORSEMENT:
        raise EnablementError(NOT_WAITING)
    _endorse(request, manager, "endorsed", NOT_WAITING)


def _endorse(request: EnablementRequest, manager: User, code: str, refusal) -> None:
    _move_or_refuse(request, RequestState.QUEUED, refusal)
    request.endorsed_by = manager
    request.endorsed_at = utcnow()
    add_event(request, "endorsed", actor=manager, code=code, name=manager.name)
    record_audit("enablement.endorsed", request, actor=manager)
    db.session.flush()
    request_id = request.id
    after_commit(db.session(), lambda: _queue_raise(request_id))


def _queue_raise(request_id: int) -> None:
    from vcpay.enablement.tasks import raise_enablement_request

    raise_enablement_request.delay(request_id)


def send_back(request: EnablementRequest, manager: User, reason: str) -> None:
    _require_manager(request, manager)
    if request.state != RequestState.AWAITING_ENDORSEMENT:
        raise EnablementError(NOT_WAITING)
    reason = reason.strip()
    if not reason:
        raise EnablementError(_l("Say why you are sending the request back."))
    _move_or_refuse(request, RequestState.SENT_BACK, NOT_WAITING)
    request.sent_back_reason = reason
    add_event(request, "sent_back", actor=manager, name=manager.name, reason=reason)
    record_audit("enablement.sent_back", request, actor=manager, reason=reason)
    queue_to_each(
        f"enablement:{request.id}:sent-back:{len(request.events)}",
        [request.requester.email, request.contact_email],
        _l(
            "Your Payment Gateway request for %(organisation)s was sent back",
            organisation=request.organisation.name,
        ),
        "sent_back",
        request=request,
        manager=manager,
        reason=reason,
        link=_link(request),
    )


def withdraw(request: EnablementRequest, actor: User) -> None:
    while True:  # Jira's decision may move it meanwhile: look again
        if request.state not in OPEN_STATES:
            raise EnablementError(_l("Only an open request can be withdrawn."))
        if move_to(request, RequestState.WITHDRAWN):
            break
    was_in_service_desk = request.jira_key is not None
    request.withdrawn_at = utcnow()
    add_event(request, "withdrawn", actor=actor, name=actor.name)
    record_audit("enablement.withdrawn", request, actor=actor)
    if was_in_service_desk:
        request_id = request.id
        after_commit(db.session(), lambda: queue_withdrawal_comment(request_id))


def queue_withdrawal_comment(request_id: int) -> None:
    from vcpay.enablement.tasks import post_decision_comment

    post_decision_comment.delay(request_id)


def _require_manager(request: EnablementRequest, user: User) -> None:
    if not can(user, Permission.ENDORSE_ENABLEMENT, request.organisation):
        raise EnablementError(
            _l("Only your organisation's authorised telehealth manager can endorse requests.")
        )


def _link(request: EnablementRequest) -> str:
    return public_url_for("enablement.detail", request_id=request.id)


def clinic_admin_emails(clinics: list[Clinic]) -> set[str]:
    emails = set()
    for clinic in clinics:
        emails.update(
            m.user.email
            for m in clinic.memberships
            if m.role == ClinicRole.CLINIC_ADMIN and m.user.is_active
        )
    return emails


def people_to_tell(request: EnablementRequest) -> set[str]:
    """The requester, the manager and the admins of the clinics asked for."""
    manager = request.organisation.telehealth_manager
    emails = {request.requester.email, request.contact_email}
    if manager is not None:
        emails.add(manager.email)
    emails.update(clinic_admin_emails([rc.clinic for rc in request.clinics]))
    return {e for e in emails if e}


def look_at_request_soon(key: str) -> bool:
    """Queue a look at request ``key`` if vcpay is waiting on it; False if it is not."""
    from vcpay.enablement import polling, tasks

    if not polling.is_open(key):
        return False
    tasks.check_service_desk_request.delay(key)
    return True
