"""Raising a request in the Jira service desk, exactly once however often it is retried."""

from datetime import timedelta

from flask import current_app, render_template

from vcpay.database import utcnow
from vcpay.enablement.models import EnablementRequest, RequestState
from vcpay.enablement.services import add_event, move_to, queue_withdrawal_comment
from vcpay.extensions import db
from vcpay.integrations.servicedesk import RequestSnapshot, ServiceDesk, ServiceDeskError
from vcpay.transactions import after_commit


class WaitForSearch(Exception):
    """An earlier attempt may have raised the request; Jira's search may not show it yet."""

    def __init__(self, seconds: float):
        super().__init__(f"waiting {seconds:.0f}s for Jira's search to catch up")
        self.seconds = seconds


def summary_of(request: EnablementRequest) -> str:
    return f"Enable Payment Gateway: {request.organisation.name} [{request.correlation_id}]"


def description_of(request: EnablementRequest) -> str:
    return render_template("enablement/jira_description.txt", request=request)


def raise_in_service_desk(request: EnablementRequest, desk: ServiceDesk) -> bool:
    """Raise ``request`` if it is queued; True once it is in Jira. The caller commits.

    Raises ``ServiceDeskError`` (recorded on the request first) or ``WaitForSearch``.
    """
    if request.state != RequestState.QUEUED:
        return request.jira_key is not None
    try:
        found = _already_raised(request, desk)
        if found is None:
            manager = request.endorsed_by or request.organisation.telehealth_manager
            account = desk.ensure_customer(manager.email, manager.name)
            found = desk.raise_request(summary_of(request), description_of(request), account)
    except ServiceDeskError as error:
        _record_failure(request, error)
        raise
    record_raised(request, found)
    return True


def _already_raised(request: EnablementRequest, desk: ServiceDesk) -> RequestSnapshot | None:
    """After an attempt whose outcome vcpay never heard, look for it before raising again."""
    if not request.raise_outcome_unknown:
        return None
    found = desk.find_by_correlation(request.correlation_id)
    if found is not None:
        return found
    settle = timedelta(seconds=current_app.config["JIRA_SEARCH_SETTLE_SECONDS"])
    waited = utcnow() - (request.last_error_at or utcnow())
    if waited < settle:
        raise WaitForSearch((settle - waited).total_seconds())
    return None


def _record_failure(request: EnablementRequest, error: ServiceDeskError) -> None:
    request.raise_attempts += 1
    request.raise_outcome_unknown = request.raise_outcome_unknown or error.outcome_unknown
    if request.last_error != str(error):
        add_event(request, "raise_failed", error=str(error), reason=error.reason)
    request.last_error = str(error)
    request.last_error_at = utcnow()


def record_raised(request: EnablementRequest, snapshot: RequestSnapshot) -> None:
    move_to(request, RequestState.RAISED)  # unless it was withdrawn meanwhile
    request.jira_key = snapshot.key
    request.jira_status = snapshot.status
    request.jira_resolution = snapshot.resolution
    request.jira_updated = snapshot.updated
    request.raised_at = utcnow()
    request.raise_attempts += 1
    request.raise_outcome_unknown = False
    request.last_error = None
    add_event(request, "raised", key=snapshot.key)
    db.session.flush()
    if request.state == RequestState.WITHDRAWN:  # Jira is told, as of any withdrawal
        request_id = request.id
        after_commit(db.session(), lambda: queue_withdrawal_comment(request_id))
