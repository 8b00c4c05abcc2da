"""Background work for enablement requests; each task is safe to run twice."""

from celery import shared_task
from flask import current_app
from sqlalchemy import select

from vcpay.claims import claim
from vcpay.database import utcnow
from vcpay.enablement import polling
from vcpay.enablement.models import EnablementRequest, RequestState
from vcpay.enablement.poll_health import record_poll_outcome
from vcpay.enablement.raising import WaitForSearch, raise_in_service_desk
from vcpay.extensions import db
from vcpay.integrations.servicedesk import ServiceDesk, ServiceDeskError

MAX_BACKOFF_SECONDS = 600


def backoff(retries: int, retry_after: float | None = None) -> float:
    """Jira's Retry-After when it gives one, else doubling from 5 s up to 10 minutes."""
    if retry_after is not None:
        return max(retry_after, 1.0)
    return float(min(MAX_BACKOFF_SECONDS, 5 * 2**retries))


def _desk() -> ServiceDesk:
    return ServiceDesk.from_config(current_app.config)


@shared_task(name="vcpay.enablement.raise_request", bind=True, max_retries=None, ignore_result=True)
def raise_enablement_request(self, request_id: int) -> None:
    request = db.session.get(EnablementRequest, request_id)
    if request is None:
        return
    abandoned = request.raise_claimed_at
    queued = EnablementRequest.id == request_id, EnablementRequest.state == RequestState.QUEUED
    if not claim(EnablementRequest.raise_claimed_at, *queued):
        return  # raised already, or another worker is raising it now
    if abandoned is not None:  # a worker died holding it: its attempt may have reached Jira
        request.raise_outcome_unknown = True
        request.last_error_at = request.last_error_at or abandoned
        db.session.commit()
    try:
        raise_in_service_desk(request, _desk())
    except WaitForSearch as waiting:
        db.session.rollback()
        request.raise_claimed_at = None
        db.session.commit()
        raise self.retry(countdown=waiting.seconds) from None
    except ServiceDeskError as error:
        request.raise_claimed_at = None
        db.session.commit()  # keep the recorded failure: the page shows it
        raise self.retry(countdown=backoff(self.request.retries, error.retry_after)) from None
    request.raise_claimed_at = None
    db.session.commit()


@shared_task(
    name="vcpay.enablement.post_decision_comment", bind=True, max_retries=None, ignore_result=True
)
def post_decision_comment(self, request_id: int) -> None:
    unposted = EnablementRequest.id == request_id, EnablementRequest.comment_posted_at.is_(None)
    if not claim(EnablementRequest.comment_claimed_at, *unposted):
        return  # posted already, or another worker is posting it now
    request = db.session.get(EnablementRequest, request_id)
    try:
        polling.post_comment_once(request, _desk())
    except ServiceDeskError as error:
        db.session.rollback()
        request.comment_claimed_at = None
        db.session.commit()
        raise self.retry(countdown=backoff(self.request.retries, error.retry_after)) from None
    db.session.commit()


@shared_task(name="vcpay.enablement.poll_service_desk", ignore_result=True)
def poll_service_desk() -> None:
    """Beat runs this every poll interval; a failed poll is simply the next poll's work."""
    try:
        report = polling.poll(_desk())
    except ServiceDeskError as error:
        db.session.rollback()
        current_app.logger.warning("Jira poll skipped: %s", error)
        record_poll_outcome(error)
        return
    record_poll_outcome(None)
    if report.changed:
        current_app.logger.info("Jira poll applied changes to %s", ", ".join(report.changed))


@shared_task(name="vcpay.enablement.check_service_desk_request", ignore_result=True)
def check_service_desk_request(key: str) -> None:
    """Jira's webhook said this request changed: apply it now rather than at the next poll.
    Nothing is retried here: if Jira cannot be read, the next poll finds the change."""
    try:
        if polling.check(_desk(), key):
            current_app.logger.info("Jira webhook: applied the change to %s", key)
    except ServiceDeskError as error:
        db.session.rollback()
        current_app.logger.warning("Jira webhook: could not read %s now: %s", key, error)


@shared_task(name="vcpay.enablement.sweep_service_desk", ignore_result=True)
def sweep_service_desk() -> None:
    """Re-read every open request, and re-queue what a lost broker message, or a worker that
    died holding a claim, left behind."""
    requeue_stalled_requests()
    requeue_abandoned_comments()
    try:
        polling.sweep(_desk())
    except ServiceDeskError as error:
        db.session.rollback()
        current_app.logger.warning("Jira sweep skipped: %s", error)


def requeue_stalled_requests() -> None:
    stale_before = utcnow().timestamp() - MAX_BACKOFF_SECONDS * 2
    queued = db.session.scalars(
        select(EnablementRequest).where(EnablementRequest.state == RequestState.QUEUED.value)
    )
    for request in queued:
        last_try = request.last_error_at or request.endorsed_at or request.updated_at
        if last_try.timestamp() < stale_before:
            raise_enablement_request.delay(request.id)


def requeue_abandoned_comments() -> None:
    for request_id in polling.abandoned_comment_ids():
        post_decision_comment.delay(request_id)
