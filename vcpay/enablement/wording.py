"""What an enablement request says to people, in the reader's language: its timeline entries
(stored as a code and parameters, worded when shown) and the service desk's status in vcpay's
own words, never Jira's names for them (``Approved (Done)``)."""

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from vcpay.enablement.models import EnablementRequest, RequestEvent, RequestState

# Each timeline code and its words; the parameters are filled in when the entry is shown.
TIMELINE = {
    "drafted": _l("Request drafted."),
    "submitted": _l("Sent to %(name)s for endorsement."),
    "endorsed": _l("Endorsed by %(name)s."),
    "sent_directly": _l("Sent by the authorised telehealth manager."),
    "sent_back": _l("Sent back by %(name)s: %(reason)s"),
    "withdrawn": _l("Withdrawn by %(name)s."),
    "raise_failed": _l("Not sent to the service desk yet; vcpay will try again."),
    "raised": _l("Raised in the service desk as %(key)s."),
    "status_changed": _l("Service desk status: %(status)s."),
    "approved": _l("Approved in the service desk. Enabled: %(clinics)s."),
    "approved_none": _l("Approved in the service desk. Every clinic was already enabled."),
    "declined": _l("Declined in the service desk."),
    "declined_with_comment": _l("Declined in the service desk: %(comment)s"),
    "needs_review": _l(
        "The service desk moved %(key)s on while its approval is still pending. vcpay has not "
        "enabled anything; a person needs to check it."
    ),
    "commented": _l("vcpay commented on the service desk request."),
}


# Why the last attempt to raise a request failed (ServiceDeskError.reason).
NOT_RAISED_BECAUSE = {
    "unreachable": _l("The service desk could not be reached."),
    "timeout": _l("The service desk did not answer in time."),
    "busy": _l("The service desk was busy."),
    "failed": _l("The service desk had a fault."),
    "credentials": _l(
        "The service desk refused vcpay's credentials; an administrator must check the Jira "
        "settings."
    ),
    "refused": _l(
        "The service desk refused the request; an administrator must check the Jira settings."
    ),
}


def timeline_entry(event: RequestEvent) -> str:
    """The entry in the reader's language. Entries written before codes were stored (no
    parameters) and codes unknown here are shown as they were written."""
    if event.params is None:
        return event.message
    code = event.params.get("code", event.kind)
    words = TIMELINE.get(code)
    if words is None:
        return event.message
    values = {k: v for k, v in event.params.items() if k != "code"}
    if code == "status_changed":
        values["status"] = status_words(values.get("status"), values.get("resolution"))
    try:
        return str(words) % values if values else str(words)
    except (KeyError, TypeError, ValueError):  # parameters from an older wording
        return event.message or str(words)


def status_words(status: str | None, resolution: str | None) -> str:
    """A Jira status (and resolution) as vcpay names the state it means."""
    config = current_app.config
    if resolution and resolution in config["JIRA_DECLINED_RESOLUTIONS"]:
        return _("Declined")
    if status in config["JIRA_APPROVED_STATUSES"]:
        return _("Approved")
    if status in config["JIRA_AWAITING_STATUSES"]:
        return _("Waiting for approval")
    return _("Being handled by the service desk")


def service_desk_status(request: EnablementRequest) -> str:
    """The service desk's side of a request, for its page and the list of requests."""
    if request.state == RequestState.NEEDS_REVIEW:
        return _("Moved on without approval")
    return status_words(request.jira_status, request.jira_resolution)


def review_reason(request: EnablementRequest) -> str:
    """Why a person must look at a request the service desk moved on without approval."""
    return str(TIMELINE["needs_review"]) % {"key": request.jira_key}


def last_attempt(request: EnablementRequest) -> str:
    """Why the last attempt to raise the request failed, in the reader's language; a failure
    recorded before reasons were (or an unknown one) as it was written."""
    if not request.last_error:
        return ""
    failures = [e for e in request.events if e.kind == "raise_failed" and e.params]
    reason = failures[-1].params.get("reason") if failures else None
    words = NOT_RAISED_BECAUSE.get(reason or "")
    return str(words) if words is not None else request.last_error


def decline_words(request: EnablementRequest) -> str:
    """The decline as its timeline says it, with the service desk's comment if it left one."""
    declined = [e for e in request.events if e.kind == "declined"]
    return timeline_entry(declined[-1]) if declined else str(TIMELINE["declined"])
