"""Reading decisions back from Jira and applying them, each exactly once.

A poll runs one enhanced search for requests updated since the cursor (less an overlap,
because JQL dates have minutes only and Jira's search lags writes), then reads approvals
only for requests whose Jira ``updated`` stamp changed. A sweep re-reads every open request
now and then, so nothing depends on the cursor alone. Longer than most modules because the poll, the
sweep and the applying of a decision share one cursor and one exactly-once rule, so they stay
together here.
"""

import enum
import re
from dataclasses import dataclass, field
from datetime import timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from vcpay.audit.services import record_audit
from vcpay.claims import stale_before
from vcpay.database import utcnow
from vcpay.enablement.models import (
    IN_SERVICE_DESK,
    EnablementRequest,
    JiraPollCursor,
    RequestState,
)
from vcpay.enablement.poll_health import CURSOR
from vcpay.enablement.services import add_event, people_to_tell
from vcpay.extensions import db
from vcpay.integrations.servicedesk import RequestSnapshot, ServiceDesk, parse_jira_time
from vcpay.mail.services import queue_to_each
from vcpay.observability.context import about
from vcpay.transactions import after_commit, commit_unit

SEARCH_PAGE = 50
KEYS_PER_SEARCH = 50


class Decision(enum.StrEnum):
    WAITING = "waiting"
    APPROVED = "approved"
    DECLINED = "declined"
    NEEDS_REVIEW = "needs_review"


@dataclass
class PollReport:
    searches: int = 0
    seen: int = 0
    changed: list[str] = field(default_factory=list)


def _cursor() -> JiraPollCursor:
    """The poll's cursor, made and committed on first use: of two first polls at once, one
    makes it and the other reads it."""
    cursor = db.session.get(JiraPollCursor, CURSOR)
    if cursor is not None:
        return cursor
    db.session.add(JiraPollCursor(name=CURSOR))
    try:
        commit_unit()
    except IntegrityError:
        db.session.rollback()
    return db.session.get(JiraPollCursor, CURSOR)


def _open_keys() -> set[str]:
    states = [s.value for s in IN_SERVICE_DESK]
    query = select(EnablementRequest.jira_key).where(EnablementRequest.state.in_(states))
    return set(db.session.scalars(query))


def poll(desk: ServiceDesk) -> PollReport:
    """One poll: apply every decision made since the last one. Commits as it goes."""
    report = PollReport()
    open_keys = _open_keys()
    cursor = _cursor()
    started = utcnow()
    if not open_keys:
        cursor.polled_at = started
        commit_unit()
        return report
    since = cursor.updated or _oldest_raise()
    overlap = timedelta(minutes=current_app.config["JIRA_POLL_OVERLAP_MINUTES"])
    newest = _search_all(desk, desk.changed_since(since, overlap), open_keys, report)
    cursor = _cursor()
    # Whatever changed before this poll less the overlap is visible to search by now, so the
    # cursor may move up to there even when nothing changed: a burst of old updates is not
    # fetched again on every poll.
    cursor.updated = max(filter(None, [cursor.updated, newest, started - overlap]))
    cursor.polled_at = started
    commit_unit()
    return report


def sweep(desk: ServiceDesk) -> PollReport:
    """Re-read every open request by key, whatever the cursor says."""
    report = PollReport()
    keys = sorted(_open_keys(), key=_key_order)
    for start in range(0, len(keys), KEYS_PER_SEARCH):
        chunk = keys[start : start + KEYS_PER_SEARCH]
        _search_all(desk, desk.keys_jql(chunk), set(chunk), report)
    _cursor().swept_at = utcnow()
    commit_unit()
    return report


def is_open(key: str) -> bool:
    """Whether ``key`` is a request vcpay raised and still waits on."""
    states = [s.value for s in IN_SERVICE_DESK]
    query = select(EnablementRequest.id).filter_by(jira_key=key)
    return db.session.scalar(query.where(EnablementRequest.state.in_(states))) is not None


def check(desk: ServiceDesk, key: str) -> bool:
    """Look at one open request now (Jira's webhook said it changed); True if it moved on."""
    if not is_open(key):
        return False
    return apply_snapshot(desk.read_request(key), desk)


# ASCII digits only: str.isdigit also passes "²", which int() then refuses.
ISSUE_NUMBER = re.compile(r"[0-9]+")


def _key_order(key: str) -> tuple[str, int]:
    """PAY-9 before PAY-10; a key Jira numbers otherwise sorts first in its project."""
    project, _, number = key.partition("-")
    return project, int(number) if ISSUE_NUMBER.fullmatch(number) else 0


def _oldest_raise():
    query = select(EnablementRequest.raised_at).where(EnablementRequest.raised_at.is_not(None))
    return min(db.session.scalars(query), default=utcnow())


def _search_all(desk: ServiceDesk, jql: str, watched: set[str], report: PollReport):
    newest = None
    page_token = None
    while True:
        snapshots, page_token = desk.search(jql, page_token, SEARCH_PAGE)
        report.searches += 1
        for snapshot in snapshots:
            report.seen += 1
            newest = max(filter(None, [newest, snapshot.updated_at]))
            if snapshot.key in watched and apply_snapshot(snapshot, desk):
                report.changed.append(snapshot.key)
        if not page_token:
            return newest


def apply_snapshot(snapshot: RequestSnapshot, desk: ServiceDesk) -> bool:
    """``_apply_snapshot``, its log lines naming the Jira request."""
    with about(jira_key=snapshot.key):
        return _apply_snapshot(snapshot, desk)


def _apply_snapshot(snapshot: RequestSnapshot, desk: ServiceDesk) -> bool:
    """Bring one request up to date with Jira; False when this version was applied before.
    Commits. Of two looks at the same version at once (two polls, or a poll and the webhook's
    look), exactly one applies it, on SQLite as on PostgreSQL."""
    request = _waiting_for(snapshot)
    if request is None:
        return False
    decision = decide(snapshot, desk)
    reason, comment = ("", "")
    if decision == Decision.DECLINED:
        reason, comment = _decline_reason(snapshot, desk)
    while not _claim_version(request, snapshot):
        db.session.rollback()  # another look moved it on meanwhile: read it again
        if (request := _waiting_for(snapshot)) is None:
            return False
    _note_status(request, snapshot)
    if decision == Decision.APPROVED:
        approve(request)
    elif decision == Decision.DECLINED:
        decline(request, reason, comment)
    elif decision == Decision.NEEDS_REVIEW and request.state != RequestState.NEEDS_REVIEW:
        flag_for_review(request, snapshot)
    request.jira_updated = snapshot.updated
    commit_unit()
    return True


def _waiting_for(snapshot: RequestSnapshot) -> EnablementRequest | None:
    """The request ``snapshot`` is about, if vcpay waits on it and has not applied this
    version or a newer one."""
    request = db.session.scalar(select(EnablementRequest).filter_by(jira_key=snapshot.key))
    if request is None or request.state not in IN_SERVICE_DESK:
        db.session.rollback()
        return None
    if not _newer(snapshot, request.jira_updated):
        db.session.rollback()
        return None
    return request


def _claim_version(request: EnablementRequest, snapshot: RequestSnapshot) -> bool:
    """Move the request from the version read to ``snapshot``'s, only if no other look has
    moved it since (a guarded update: SQLite ignores row locks)."""
    claimed = db.session.execute(
        update(EnablementRequest)
        .where(
            EnablementRequest.id == request.id,
            EnablementRequest.state == request.state,
            EnablementRequest.jira_updated.is_not_distinct_from(request.jira_updated),
        )
        .values(jira_updated=snapshot.updated)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def _newer(snapshot: RequestSnapshot, applied: str | None) -> bool:
    """Whether Jira's copy is newer than the one applied. A search that lags can return an
    older copy than the webhook's direct read applied: it must not be applied again."""
    return not applied or snapshot.updated_at > parse_jira_time(applied)


def decide(snapshot: RequestSnapshot, desk: ServiceDesk) -> Decision:
    config = current_app.config
    approvals = desk.approvals(snapshot.key)
    if approvals:
        if any(a.final_decision == "declined" for a in approvals):
            return Decision.DECLINED
        if all(a.final_decision == "approved" for a in approvals):
            return Decision.APPROVED
        # Still pending: anything other than waiting means someone moved it by hand.
        if snapshot.status in config["JIRA_AWAITING_STATUSES"]:
            return Decision.WAITING
        return Decision.NEEDS_REVIEW
    # No approval step on this workflow: fall back to the configured names.
    if snapshot.resolution in config["JIRA_DECLINED_RESOLUTIONS"]:
        return Decision.DECLINED
    if snapshot.status in config["JIRA_APPROVED_STATUSES"]:
        return Decision.APPROVED
    if snapshot.status_category == "done":
        return Decision.NEEDS_REVIEW
    return Decision.WAITING


def _note_status(request: EnablementRequest, snapshot: RequestSnapshot) -> None:
    if request.jira_status != snapshot.status:
        add_event(request, "status_changed", status=snapshot.status, resolution=snapshot.resolution)
    request.jira_status = snapshot.status
    request.jira_resolution = snapshot.resolution


def approve(request: EnablementRequest) -> None:
    """Enable every listed clinic, in the caller's transaction; comment and email after it."""
    now = utcnow()
    enabled = []
    for requested in request.clinics:
        clinic = requested.clinic
        if not clinic.gateway_enabled:
            clinic.gateway_enabled_at = now
            clinic.gateway_enabled_by_request_id = request.id
            enabled.append(clinic)
            record_audit("clinic.gateway_enabled", clinic, request=request.jira_key)
    request.state = RequestState.APPROVED.value
    request.decided_at = now
    if enabled:
        add_event(request, "approved", clinics=", ".join(c.name for c in enabled))
    else:
        add_event(request, "approved", code="approved_none")
    record_audit("enablement.approved", request, jira_key=request.jira_key)
    organisation = request.organisation.name
    subject = _l("Payment Gateway approved for %(organisation)s", organisation=organisation)
    _tell_people(request, "approved", subject)
    _comment_after_commit(request)


def decline(request: EnablementRequest, reason: str, comment: str = "") -> None:
    request.state = RequestState.DECLINED.value
    request.decided_at = utcnow()
    request.decision_reason = reason
    if comment:
        add_event(request, "declined", code="declined_with_comment", comment=comment)
    else:
        add_event(request, "declined")
    record_audit("enablement.declined", request, jira_key=request.jira_key)
    organisation = request.organisation.name
    subject = _l("Payment Gateway request declined: %(organisation)s", organisation=organisation)
    _tell_people(request, "declined", subject)


def flag_for_review(request: EnablementRequest, snapshot: RequestSnapshot) -> None:
    request.state = RequestState.NEEDS_REVIEW.value
    request.review_reason = (
        f"The service desk moved {snapshot.key} to '{snapshot.status}' while its approval is "
        "still pending. vcpay has not enabled anything; a person needs to check it."
    )
    add_event(request, "needs_review", key=snapshot.key)
    record_audit("enablement.needs_review", request, status=snapshot.status)
    subject = _l("Payment Gateway request needs review: %(key)s", key=snapshot.key)
    _tell_people(request, "needs_review", subject)


def _decline_reason(snapshot: RequestSnapshot, desk: ServiceDesk) -> tuple[str, str]:
    """The reason kept on the request in Jira's terms, for the record, and the service desk's
    last public comment, which people are shown in their language's sentence around it."""
    comments = desk.public_comments(snapshot.key)
    comment = comments[-1] if comments else ""
    parts = [f"Resolution: {snapshot.resolution}." if snapshot.resolution else ""]
    if comment:
        parts.append(f"Service desk: {comment}")
    return " ".join(p for p in parts if p), comment


def _tell_people(request: EnablementRequest, outcome: str, subject) -> None:
    from vcpay.public_urls import public_url_for

    queue_to_each(
        f"enablement:{request.id}:{outcome}",
        people_to_tell(request),
        subject,
        f"decision_{outcome}",
        request=request,
        link=public_url_for("enablement.detail", request_id=request.id),
    )


def _comment_after_commit(request: EnablementRequest) -> None:
    from vcpay.enablement.tasks import post_decision_comment

    request_id = request.id
    after_commit(db.session(), lambda: post_decision_comment.delay(request_id))


def comment_body(request: EnablementRequest) -> str:
    """The public comment vcpay leaves on the Jira request; the marker makes it findable."""
    if request.state == RequestState.WITHDRAWN:
        return (
            f"The organisation withdrew this request in vcpay; nothing will be enabled. "
            f"[{request.correlation_id}:withdrawn]"
        )
    enabled = [
        rc.clinic for rc in request.clinics if rc.clinic.gateway_enabled_by_request_id == request.id
    ]
    lines = ", ".join(f"{c.name} (vcpay clinic {c.id})" for c in enabled) or "none"
    return f"vcpay has enabled the Payment Gateway for: {lines}. [{request.correlation_id}:enabled]"


def comment_marker(request: EnablementRequest) -> str:
    suffix = "withdrawn" if request.state == RequestState.WITHDRAWN else "enabled"
    return f"[{request.correlation_id}:{suffix}]"


def post_comment_once(request: EnablementRequest, desk: ServiceDesk) -> None:
    """Comment on the Jira request unless vcpay has already; the caller commits."""
    if request.comment_posted_at is not None or request.jira_key is None:
        return
    marker = comment_marker(request)
    if not any(marker in body for body in desk.all_comment_bodies(request.jira_key)):
        desk.add_public_comment(request.jira_key, comment_body(request))
    request.comment_posted_at = utcnow()
    add_event(request, "commented")


def abandoned_comment_ids() -> list[int]:
    """Requests whose comment a worker claimed and then died: the claim is stale, so a new
    attempt may take it (and looks for vcpay's comment on the request before posting)."""
    query = select(EnablementRequest.id).where(
        EnablementRequest.comment_posted_at.is_(None),
        EnablementRequest.comment_claimed_at < stale_before(),
    )
    return list(db.session.scalars(query))
