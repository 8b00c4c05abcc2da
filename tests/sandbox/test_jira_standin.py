"""The stand-in through the real ``jira`` library: desks, customers, requests, approvals,
comments, transitions and authentication."""

import json
from datetime import datetime

import pytest
import requests
from jira import JIRA, JIRAError
from jira.resources import Resolution, Status, StatusCategory

from tests.sandbox.conftest import INTEGRATION, jira_client, raise_request


def jira_moment(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def servicedesk_url(url: str, path: str) -> str:
    return f"{url}/rest/servicedeskapi/{path}"


def test_constructor_reads_server_info_and_sees_cloud(jira, standin_url, sandbox):
    info = jira.server_info()

    assert jira.deploymentType == "Cloud"
    assert jira._is_cloud
    assert info["versionNumbers"] == [1001, 0, 0]
    assert info["baseUrl"] == standin_url
    assert jira.supports_service_desk()
    assert jira.myself()["timeZone"] == "Australia/Sydney"
    assert jira.myself()["accountId"] == "557058:vcpay-integration"


def test_service_desk_and_request_type_are_found_by_id_key_and_name(jira):
    desks = jira.service_desks()
    by_key = jira.service_desk("PAY")
    by_id = jira.service_desk("1")
    request_type = jira.request_type_by_name(by_key, "Enable Payment Gateway")

    assert [(d.id, d.projectId, d.projectKey, d.projectName) for d in desks] == [
        ("1", "10000", "PAY", "Payment Gateway Service Desk")
    ]
    assert by_key.id == by_id.id == "1"
    assert (request_type.id, request_type.issueTypeId, request_type.serviceDeskId) == (
        "10",
        "10004",
        "1",
    )
    with pytest.raises(KeyError):
        jira.request_type_by_name(by_key, "Enable Coffee Machine")
    with pytest.raises(JIRAError) as missing:
        jira.service_desk("99")
    assert missing.value.status_code == 404


def test_create_customer_then_duplicate_says_already_exists(jira, standin_url):
    customer = jira.create_customer("Manager@Clinic.example", "Telehealth Manager")

    with pytest.raises(JIRAError) as duplicate:
        jira.create_customer("manager@clinic.example", "Someone Else")
    strict = requests.post(
        servicedesk_url(standin_url, "customer?strictConflictStatusCode=true"),
        json={"email": "manager@clinic.example", "displayName": "Again"},
        auth=INTEGRATION,
        timeout=5,
    )
    found = jira._session.get(
        f"{standin_url}/rest/api/2/user/search", params={"query": "manager@clinic.example"}
    ).json()

    assert customer.accountId.startswith("qm:")
    assert customer.emailAddress == "Manager@Clinic.example"
    assert duplicate.value.status_code == 400
    assert "already exists" in duplicate.value.text
    assert strict.status_code == 409
    assert [u["accountId"] for u in found] == [customer.accountId]


def test_customer_request_with_int_ids_becomes_an_issue_waiting_for_approval(jira, sandbox):
    customer = sandbox.customer()
    issue = raise_request(
        sandbox, jira, "Enable Payment Gateway [vcpay-7f3a]", raiseOnBehalfOf=customer
    )
    second = raise_request(sandbox, jira, "Second", raiseOnBehalfOf="manager@clinic.example")

    fields = issue.fields
    assert (issue.key, issue.id) == ("PAY-1", "10001")
    assert (second.key, second.id) == ("PAY-2", "10002")
    assert isinstance(fields.status, Status)
    assert isinstance(fields.status.statusCategory, StatusCategory)
    assert fields.status.name == "Waiting for approval"
    assert fields.status.statusCategory.key == "indeterminate"
    assert fields.resolution is None
    assert fields.summary == "Enable Payment Gateway [vcpay-7f3a]"
    assert fields.description == "Clinics: North, South"
    assert fields.reporter.accountId == customer
    assert fields.creator.accountId == "557058:vcpay-integration"
    assert fields.project.key == "PAY"
    assert fields.issuetype.id == "10004"
    assert fields.customfield_10010.requestType.name == "Enable Payment Gateway"
    assert (fields.assignee, fields.labels) == (None, [])
    assert fields.updated.endswith(("+1100", "+1000"))
    assert len(fields.updated) == len("2026-11-27T10:00:00.123+1100")
    assert fields.updated == fields.created


def test_customer_request_links_point_at_the_agent_page(jira, sandbox, standin_url):
    customer = sandbox.customer()
    created = jira.create_customer_request(
        {
            "serviceDeskId": "1",
            "requestTypeId": "Enable Payment Gateway",  # a name: the library looks it up
            "requestFieldValues": {"summary": "By name"},
            "raiseOnBehalfOf": customer,
        },
        prefetch=False,
    )
    raw = created.raw

    assert raw["issueKey"] == "PAY-1"
    assert raw["requestTypeId"] == "10"
    assert raw["serviceDeskId"] == "1"
    assert raw["currentStatus"]["status"] == "Waiting for approval"
    assert raw["currentStatus"]["statusCategory"] == "INDETERMINATE"
    assert raw["_links"]["web"] == f"{standin_url}/browse/PAY-1"
    assert raw["_links"]["agent"] == f"{standin_url}/browse/PAY-1"
    assert requests.get(raw["_links"]["web"], timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"requestTypeId": 99}, 400, "request type"),
        ({"serviceDeskId": 7}, 400, "service desk"),
        ({"requestFieldValues": {"description": "no summary"}}, 400, "summary"),
        ({"requestFieldValues": {"summary": "x", "priority": "High"}}, 400, "priority"),
        ({"raiseOnBehalfOf": "nobody@nowhere.example"}, 400, "does not exist"),
    ],
)
def test_invalid_customer_requests_are_refused(sandbox, standin_url, change, status, message):
    body = {
        "serviceDeskId": 1,
        "requestTypeId": 10,
        "requestFieldValues": {"summary": "Enable"},
        "raiseOnBehalfOf": sandbox.customer(),
        **change,
    }
    response = requests.post(
        servicedesk_url(standin_url, "request"), json=body, auth=INTEGRATION, timeout=5
    )

    assert response.status_code == status
    assert message in response.json()["errorMessage"].lower()
    assert set(response.json()) == {"errorMessage", "i18nErrorMessage"}
    assert sandbox.answer("GET", "/requests").json() == []


def approvals_of(jira: JIRA, url: str, key: str) -> dict:
    return jira._session.get(servicedesk_url(url, f"request/{key}/approval")).json()


def test_approval_by_the_agent_approves_the_request_once(jira, agent_jira, sandbox, standin_url):
    issue = raise_request(sandbox, jira)
    before = approvals_of(jira, standin_url, issue.key)
    approval_url = servicedesk_url(standin_url, f"request/{issue.key}/approval/1")

    with pytest.raises(JIRAError) as not_approver:
        jira._session.post(approval_url, data=json.dumps({"decision": "approve"}))
    answered = agent_jira._session.post(approval_url, data=json.dumps({"decision": "approve"}))
    with pytest.raises(JIRAError) as again:
        agent_jira._session.post(approval_url, data=json.dumps({"decision": "decline"}))
    after = jira.issue(issue.key)
    single = jira._session.get(approval_url).json()

    assert before["values"][0]["finalDecision"] == "pending"
    assert before["values"][0]["name"] == "Gateway approval"
    assert before["values"][0]["approvers"][0]["approver"]["displayName"] == "Sam Agent"
    assert "completedDate" not in before["values"][0]
    assert not_approver.value.status_code == 403
    assert answered.json()["finalDecision"] == "approved"
    assert again.value.status_code == 409
    assert single["finalDecision"] == "approved"
    assert single["completedDate"]["epochMillis"] >= single["createdDate"]["epochMillis"]
    assert after.fields.status.name == "Approved"
    assert after.fields.status.statusCategory.key == "done"
    assert isinstance(after.fields.resolution, Resolution)
    assert after.fields.resolution.name == "Done"
    assert after.fields.updated > issue.fields.updated


def test_decline_sets_declined_status_and_resolution(jira, agent_jira, sandbox, standin_url):
    issue = raise_request(sandbox, jira)
    agent_jira._session.post(
        servicedesk_url(standin_url, f"request/{issue.key}/approval/1"),
        data=json.dumps({"decision": "decline"}),
    )
    declined = jira.issue(issue.key)

    assert declined.fields.status.name == "Declined"
    assert declined.fields.status.statusCategory.key == "done"
    assert declined.fields.resolution.name == "Declined"
    assert approvals_of(jira, standin_url, issue.key)["values"][0]["finalDecision"] == "declined"


def test_bad_decisions_and_unknown_approvals_are_refused(agent_jira, jira, sandbox, standin_url):
    issue = raise_request(sandbox, jira)
    with pytest.raises(JIRAError) as bad:
        agent_jira._session.post(
            servicedesk_url(standin_url, f"request/{issue.key}/approval/1"),
            data=json.dumps({"decision": "maybe"}),
        )
    with pytest.raises(JIRAError) as unknown:
        agent_jira._session.get(servicedesk_url(standin_url, f"request/{issue.key}/approval/9"))

    assert bad.value.status_code == 400
    assert unknown.value.status_code == 404


def test_status_history_is_most_recent_first(jira, sandbox, standin_url):
    issue = raise_request(sandbox, jira)
    sandbox.post(f"/requests/{issue.key}/move", {"status": "In Progress"})
    sandbox.post(f"/requests/{issue.key}/decide", {"decision": "approve"})

    history = jira._session.get(servicedesk_url(standin_url, f"request/{issue.key}/status")).json()
    first_page = jira._session.get(
        servicedesk_url(standin_url, f"request/{issue.key}/status"), params={"limit": 2}
    ).json()

    assert [v["status"] for v in history["values"]] == [
        "Approved",
        "In Progress",
        "Waiting for approval",
    ]
    assert [v["statusCategory"] for v in history["values"]] == [
        "DONE",
        "INDETERMINATE",
        "INDETERMINATE",
    ]
    assert history["isLastPage"] is True
    assert (first_page["size"], first_page["isLastPage"]) == (2, False)
    assert "next" in first_page["_links"]


def test_comments_keep_public_and_internal_apart(jira, sandbox, standin_url):
    issue = raise_request(sandbox, jira)
    jira.add_comment(issue.key, "The gateway is being enabled.")
    jira.add_comment(issue.key, "Checked the Stripe account by phone.", is_internal=True)
    added = jira._session.post(
        servicedesk_url(standin_url, f"request/{issue.key}/comment"),
        data=json.dumps({"body": "Reply through the portal API", "public": True}),
    ).json()
    with pytest.raises(JIRAError) as no_public_flag:
        jira._session.post(
            servicedesk_url(standin_url, f"request/{issue.key}/comment"),
            data=json.dumps({"body": "missing public"}),
        )

    platform = jira.comments(issue.key)
    public_only = jira._session.get(
        servicedesk_url(standin_url, f"request/{issue.key}/comment"),
        params={"public": "true", "internal": "false"},
    ).json()
    everything = jira._session.get(servicedesk_url(standin_url, f"request/{issue.key}/comment"))

    assert [(c.body, c.jsdPublic) for c in platform] == [
        ("The gateway is being enabled.", True),
        ("Checked the Stripe account by phone.", False),
        ("Reply through the portal API", True),
    ]
    assert platform[0].author.accountId == "557058:vcpay-integration"
    assert [v["body"] for v in public_only["values"]] == [
        "The gateway is being enabled.",
        "Reply through the portal API",
    ]
    assert [v["public"] for v in everything.json()["values"]] == [True, False, True]
    assert added["public"] is True
    assert no_public_flag.value.status_code == 400
    assert jira.issue(issue.key).fields.updated > issue.fields.updated


def test_manual_transitions_leave_the_approval_pending(jira, sandbox, standin_url):
    issue = raise_request(sandbox, jira)
    offered = {t["name"]: t["id"] for t in jira.transitions(issue.key)}

    jira.transition_issue(issue.key, "Move to In Progress")
    in_progress = jira.issue(issue.key)
    then_offered = {t["name"] for t in jira.transitions(issue.key)}
    jira.transition_issue(issue.key, offered["Resolve"], comment="Done by hand")
    resolved = jira.issue(issue.key)
    with pytest.raises(JIRAError) as invalid:
        jira.transition_issue(issue.key, "21")

    assert offered == {"Move to In Progress": "21", "Resolve": "31"}
    assert in_progress.fields.status.name == "In Progress"
    assert in_progress.fields.status.statusCategory.key == "indeterminate"
    assert then_offered == {"Resolve"}
    assert resolved.fields.status.name == "Resolved"
    assert resolved.fields.resolution.name == "Done"
    assert approvals_of(jira, standin_url, issue.key)["values"][0]["finalDecision"] == "pending"
    assert jira.comments(issue.key)[-1].body == "Done by hand"
    assert invalid.value.status_code == 400


def test_jsm_request_expands_and_works_without_the_experimental_header(jira, sandbox, standin_url):
    issue = raise_request(sandbox, jira)
    response = requests.get(
        servicedesk_url(standin_url, f"request/{issue.key}"),
        params={"expand": "requestType,serviceDesk,status"},
        auth=INTEGRATION,
        timeout=5,
    )
    body = response.json()

    assert response.status_code == 200
    assert body["issueKey"] == issue.key
    assert body["requestType"]["name"] == "Enable Payment Gateway"
    assert body["serviceDesk"]["projectKey"] == "PAY"
    assert body["status"]["values"][0]["status"] == "Waiting for approval"


def bearer_client(url: str) -> JIRA:
    """The library with the API token as a personal access token (``token_auth``)."""
    return JIRA(
        server=url,
        token_auth="sandbox-api-token",
        max_retries=0,
        timeout=5,
        options={"check_update": False},
    )


def test_missing_or_wrong_credentials_get_401(standin_url):
    anonymous = JIRA(server=standin_url, max_retries=0, timeout=5, options={"check_update": False})
    with pytest.raises(JIRAError) as no_auth:
        anonymous.myself()
    with pytest.raises(JIRAError) as wrong_token:
        jira_client(standin_url, ("vcpay@servicedesk.example", "not-the-token"))
    raw = requests.get(f"{standin_url}/rest/servicedeskapi/servicedesk", timeout=5)

    assert no_auth.value.status_code == 401
    assert no_auth.value.response.headers["WWW-Authenticate"].startswith("Basic")
    assert no_auth.value.response.json()["errorMessages"]
    assert wrong_token.value.status_code == 401
    assert raw.status_code == 401
    assert set(raw.json()) == {"errorMessage", "i18nErrorMessage"}


def test_cloud_takes_an_api_token_with_basic_auth_only(standin_url):
    with pytest.raises(JIRAError) as bearer:
        bearer_client(standin_url)
    as_bearer = requests.get(
        f"{standin_url}/rest/api/2/myself",
        headers={"Authorization": "Bearer sandbox-api-token"},
        timeout=5,
    )

    assert bearer.value.status_code == 401
    assert as_bearer.status_code == 401
    assert jira_client(standin_url).myself()["emailAddress"] == "vcpay@servicedesk.example"


def test_data_center_takes_a_personal_access_token_as_bearer(other_standin):
    url = other_standin(deployment_type="Server")

    assert bearer_client(url).myself()["emailAddress"] == "vcpay@servicedesk.example"
    assert jira_client(url).myself()["emailAddress"] == "vcpay@servicedesk.example"


def test_call_log_records_api_calls_only(jira, sandbox, standin_url):
    sandbox.answer("DELETE", "/calls")
    jira.myself()
    requests.get(f"{standin_url}/rest/api/2/issue/PAY-404", auth=INTEGRATION, timeout=5)
    requests.get(f"{standin_url}/", timeout=5)
    sandbox.answer("GET", "/requests")

    calls = sandbox.calls()

    assert calls == [
        {"method": "GET", "path": "/rest/api/2/myself", "query": "", "status": 200},
        {"method": "GET", "path": "/rest/api/2/issue/PAY-404", "query": "", "status": 404},
    ]
    assert sandbox.answer("DELETE", "/calls").status_code == 204
    assert sandbox.calls() == []


def test_reset_returns_to_the_seed(jira, sandbox):
    raise_request(sandbox, jira)
    sandbox.fault(path="/rest/api/2/myself", status=503)
    sandbox.post("/search-lag", {"seconds": 30})

    sandbox.post("/reset", {})

    assert sandbox.answer("GET", "/requests").json() == []
    assert sandbox.answer("GET", "/faults").json() == []
    assert sandbox.answer("GET", "/search-lag").json() == {"seconds": 0.0}
    assert sandbox.calls() == []
    assert jira.myself()["accountId"] == "557058:vcpay-integration"
    assert raise_request(sandbox, jira).key == "PAY-1"


def test_bulk_creates_requests_for_one_customer(jira, sandbox):
    created = sandbox.post("/bulk", {"count": 3, "summary_prefix": "Bench"})
    listed = sandbox.answer("GET", "/requests").json()

    assert created["keys"] == ["PAY-1", "PAY-2", "PAY-3"]
    assert [r["summary"] for r in listed] == ["Bench 1", "Bench 2", "Bench 3"]
    assert {r["reporter"]["accountId"] for r in listed} == {created["customer"]}
    assert jira.issue("PAY-3").fields.creator.accountId == "557058:vcpay-integration"


def test_clock_offset_shifts_new_timestamps(jira, sandbox):
    before = raise_request(sandbox, jira, "now")
    shifted = sandbox.post("/clock", {"offset_seconds": 3600})
    after = raise_request(sandbox, jira, "an hour on")

    gap = jira_moment(after.fields.created) - jira_moment(before.fields.created)
    assert shifted["offset_seconds"] == 3600
    assert 3600 <= gap.total_seconds() < 3660
