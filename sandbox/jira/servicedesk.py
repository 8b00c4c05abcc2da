"""The Jira Service Management REST API (``/rest/servicedeskapi``), the part vcpay uses.

``X-ExperimentalApi`` is accepted everywhere and required nowhere: the jira library leaves it
off ``service_desk(id)``.
"""

from typing import Any

from flask import Blueprint, g, jsonify, request

from sandbox.jira import catalog, dtos
from sandbox.jira.dtos import paged
from sandbox.jira.errors import Conflict, Invalid, NotFound
from sandbox.jira.runtime import bool_arg, int_arg, json_body, list_arg, site, standin

servicedesk = Blueprint("servicedesk", __name__, url_prefix="/rest/servicedeskapi")

REQUEST_FIELDS = {"summary", "description"}


def _page_args() -> tuple[int, int]:
    return int_arg("start", 0), int_arg("limit", 50, minimum=1, maximum=100)


def _desk(id_or_key: str) -> catalog.ServiceDesk:
    desk = catalog.find_service_desk(id_or_key)
    if desk is None:
        raise NotFound(f"The service desk '{id_or_key}' does not exist.")
    return desk


def _request_type(desk: catalog.ServiceDesk, request_type_id: str) -> catalog.RequestType:
    for request_type in catalog.request_types_of(desk):
        if request_type.id == request_type_id:
            return request_type
    raise NotFound(f"The request type '{request_type_id}' does not exist on this service desk.")


@servicedesk.get("/info")
def info():
    here = site()
    return jsonify(
        {
            "version": "10.3.0",
            "platformVersion": "1001.0.0",
            "buildDate": here.date(1_761_955_200_000),
            "buildChangeSet": "vcpay-sandbox",
            "isLicensedForUse": True,
            "_links": {"self": here.servicedesk("info")},
        }
    )


@servicedesk.get("/servicedesk")
def service_desks():
    here = site()
    start, limit = _page_args()
    values = [dtos.service_desk_dto(here, d) for d in catalog.SERVICE_DESKS]
    return jsonify(paged(here, "servicedesk", values, start, limit))


@servicedesk.get("/servicedesk/<id_or_key>")
def service_desk(id_or_key: str):
    return jsonify(dtos.service_desk_dto(site(), _desk(id_or_key)))


@servicedesk.get("/servicedesk/<id_or_key>/requesttype")
def request_types(id_or_key: str):
    here = site()
    desk = _desk(id_or_key)
    start, limit = _page_args()
    query = request.args.get("searchQuery", "").lower()
    found = [rt for rt in catalog.request_types_of(desk) if query in rt.name.lower()]
    values = [dtos.request_type_dto(here, rt) for rt in found]
    return jsonify(paged(here, f"servicedesk/{desk.id}/requesttype", values, start, limit))


@servicedesk.get("/servicedesk/<id_or_key>/requesttype/<request_type_id>")
def request_type(id_or_key: str, request_type_id: str):
    found = _request_type(_desk(id_or_key), request_type_id)
    return jsonify(dtos.request_type_dto(site(), found))


@servicedesk.get("/servicedesk/<id_or_key>/requesttype/<request_type_id>/field")
def request_type_fields(id_or_key: str, request_type_id: str):
    _request_type(_desk(id_or_key), request_type_id)
    return jsonify(dtos.request_type_fields())


@servicedesk.post("/customer")
def create_customer():
    body = json_body()
    email = body.get("email")
    display_name = body.get("displayName") or body.get("fullName") or ""
    if not isinstance(email, str) or not email.strip():
        raise Invalid("An email address is required to create a customer.")
    try:
        customer = standin().state.create_customer(email, str(display_name))
    except Conflict as duplicate:
        # Jira Cloud answers 400 unless the caller asks for a strict 409.
        if not bool_arg("strictConflictStatusCode", False):
            raise Invalid(duplicate.message) from None
        raise
    return jsonify(dtos.user_dto(site(), customer)), 201


def _id_text(value: Any, name: str) -> str:
    """The jira library sends ids as ints or strings; Jira takes both."""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        raise Invalid(f"The '{name}' field is required.")
    return str(value).strip()


def _field_values(body: dict[str, Any]) -> tuple[str, str]:
    values = body.get("requestFieldValues")
    if not isinstance(values, dict):
        raise Invalid("The 'requestFieldValues' field is required.")
    unknown = set(values) - REQUEST_FIELDS
    if unknown:
        raise Invalid(f"The field '{sorted(unknown)[0]}' is not valid for this request type.")
    summary = values.get("summary")
    description = values.get("description") or ""
    if not isinstance(summary, str) or not summary.strip():
        raise Invalid("Summary: You must specify a summary of the request.")
    if not isinstance(description, str):
        raise Invalid("Description: the description must be text.")
    return summary.strip(), description


@servicedesk.post("/request")
def create_request():
    body = json_body()
    state = standin().state
    # The spec lists no 404 for this call: unknown ids are a bad request here.
    desk = catalog.find_service_desk(_id_text(body.get("serviceDeskId"), "serviceDeskId"))
    if desk is None or desk.id != str(body["serviceDeskId"]).strip():
        raise Invalid(f"The service desk '{body.get('serviceDeskId')}' does not exist.")
    request_type_id = _id_text(body.get("requestTypeId"), "requestTypeId")
    found_type = next(
        (rt for rt in catalog.request_types_of(desk) if rt.id == request_type_id), None
    )
    if found_type is None:
        raise Invalid(f"The request type '{request_type_id}' does not exist on this service desk.")
    summary, description = _field_values(body)
    reporter = g.account
    on_behalf_of = body.get("raiseOnBehalfOf")
    if on_behalf_of is not None:
        reporter = state.find_account(str(on_behalf_of))
        if reporter is None:
            raise Invalid(f"The user '{on_behalf_of}' does not exist or is not a customer.")
    participants = body.get("requestParticipants") or []
    if not isinstance(participants, list):
        raise Invalid("'requestParticipants' must be a list of account ids.")
    created = state.create_request(g.account, found_type, summary, description, reporter)
    return jsonify(dtos.customer_request_dto(site(), created)), 201


@servicedesk.get("/request/<id_or_key>")
def customer_request(id_or_key: str):
    found = standin().state.request(id_or_key)
    return jsonify(dtos.customer_request_dto(site(), found, list_arg("expand")))


@servicedesk.get("/request/<id_or_key>/status")
def status_history(id_or_key: str):
    here = site()
    found = standin().state.request(id_or_key)
    start, limit = _page_args()
    values = [dtos.status_change_dto(here, c) for c in reversed(found.status_history)]
    return jsonify(paged(here, f"request/{found.issue_id}/status", values, start, limit))


@servicedesk.get("/request/<id_or_key>/approval")
def approvals(id_or_key: str):
    here = site()
    found = standin().state.request(id_or_key)
    start, limit = _page_args()
    values = [dtos.approval_dto(here, found, a) for a in found.approvals]
    return jsonify(paged(here, f"request/{found.issue_id}/approval", values, start, limit))


@servicedesk.get("/request/<id_or_key>/approval/<approval_id>")
def approval(id_or_key: str, approval_id: str):
    found = standin().state.request(id_or_key)
    wanted = found.approval(approval_id)
    if wanted is None:
        raise NotFound(f"The approval {approval_id} does not exist on {found.key}.")
    return jsonify(dtos.approval_dto(site(), found, wanted))


@servicedesk.post("/request/<id_or_key>/approval/<approval_id>")
def answer_approval(id_or_key: str, approval_id: str):
    decision = json_body().get("decision")
    state = standin().state
    answered = state.decide(id_or_key, approval_id, g.account, str(decision or ""))
    return jsonify(dtos.approval_dto(site(), state.request(id_or_key), answered))


@servicedesk.get("/request/<id_or_key>/comment")
def request_comments(id_or_key: str):
    here = site()
    found = standin().state.request(id_or_key)
    public, internal = bool_arg("public", True), bool_arg("internal", True)
    shown = [c for c in found.comments if (public if c.public else internal)]
    start, limit = _page_args()
    values = [dtos.comment_dto(here, found, c) for c in shown]
    query = {"public": str(public).lower(), "internal": str(internal).lower()}
    return jsonify(paged(here, f"request/{found.issue_id}/comment", values, start, limit, query))


@servicedesk.post("/request/<id_or_key>/comment")
def add_request_comment(id_or_key: str):
    body = json_body()
    if not isinstance(body.get("public"), bool):
        raise Invalid("The 'public' field is required and must be true or false.")
    if not isinstance(body.get("body"), str):
        raise Invalid("The 'body' field is required.")
    state = standin().state
    comment = state.add_comment(id_or_key, g.account, body["body"], public=body["public"])
    found = state.request(id_or_key)
    return jsonify(dtos.comment_dto(site(), found, comment)), 201
