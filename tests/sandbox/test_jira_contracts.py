"""Contract tests: the stand-in's responses against Atlassian's official OpenAPI schemas
(``../shared/contracts``), the JSM spec and the platform v3 spec."""

import copy
import json
from typing import Any

import pytest
import requests

from tests.sandbox.conftest import AGENT, INTEGRATION

EXPERIMENTAL = {"X-ExperimentalApi": "opt-in"}


class Api:
    def __init__(self, url: str, auth=INTEGRATION):
        self.url = url
        self.auth = auth

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(
            self.url + path, params=params, auth=self.auth, headers=EXPERIMENTAL, timeout=5
        )

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(
            self.url + path, json=body, auth=self.auth, headers=EXPERIMENTAL, timeout=5
        )


def adf(text: str) -> dict[str, Any]:
    paragraph = {"type": "paragraph", "content": [{"type": "text", "text": text}]}
    return {"type": "doc", "version": 1, "content": [paragraph]}


def as_v3(payload: Any) -> Any:
    """A copy of a v2 payload with its rich-text fields in v3's Atlassian Document Format.

    v2 and v3 share their schemas except for these fields (issue ``description`` and comment
    ``body``): v2 sends plain strings where v3 sends ADF documents. Converting them first means
    the v3 schema judges everything else, whatever it says about rich text.
    """
    converted = copy.deepcopy(payload)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            fields = node.get("fields")
            if isinstance(fields, dict) and isinstance(fields.get("description"), str):
                fields["description"] = adf(fields["description"])
            if "jsdPublic" in node and isinstance(node.get("body"), str):
                node["body"] = adf(node["body"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(converted)
    return converted


@pytest.fixture
def api(standin_url):
    return Api(standin_url)


@pytest.fixture
def request_key(sandbox, api) -> str:
    customer = sandbox.customer()
    created = api.post(
        "/rest/servicedeskapi/request",
        {
            "serviceDeskId": 1,
            "requestTypeId": 10,
            "requestFieldValues": {"summary": "Enable", "description": "North and South clinics"},
            "raiseOnBehalfOf": customer,
        },
    )
    assert created.status_code == 201
    return created.json()["issueKey"]


def assert_valid(contracts, spec: str, schema: str, payload: Any) -> None:
    errors = contracts.errors(spec, schema, payload)
    assert not errors, f"{schema}: {errors}"


def test_servicedesk_catalogue_matches_the_jsm_schemas(contracts, api):
    assert_valid(contracts, "jsm", "SoftwareInfoDTO", api.get("/rest/servicedeskapi/info").json())
    assert_valid(
        contracts,
        "jsm",
        "PagedDTOServiceDeskDTO",
        api.get("/rest/servicedeskapi/servicedesk").json(),
    )
    assert_valid(
        contracts, "jsm", "ServiceDeskDTO", api.get("/rest/servicedeskapi/servicedesk/PAY").json()
    )
    types = api.get("/rest/servicedeskapi/servicedesk/1/requesttype").json()
    assert_valid(contracts, "jsm", "PagedDTORequestTypeDTO", types)
    assert_valid(
        contracts,
        "jsm",
        "CustomerRequestCreateMetaDTO",
        api.get("/rest/servicedeskapi/servicedesk/1/requesttype/10/field").json(),
    )
    assert types["values"][0]["name"] == "Enable Payment Gateway"


def test_customer_and_created_request_match_the_jsm_schemas(contracts, api):
    customer = api.post(
        "/rest/servicedeskapi/customer", {"email": "c@clinic.example", "displayName": "C"}
    )
    created = api.post(
        "/rest/servicedeskapi/request",
        {
            "serviceDeskId": "1",
            "requestTypeId": "10",
            "requestFieldValues": {"summary": "Enable", "description": "Clinics"},
            "raiseOnBehalfOf": customer.json()["accountId"],
        },
    )
    expanded = api.get(
        f"/rest/servicedeskapi/request/{created.json()['issueKey']}",
        expand="requestType,serviceDesk,status,comment,participant",
    )

    assert customer.status_code == 201
    assert_valid(contracts, "jsm", "UserDTO", customer.json())
    assert created.status_code == 201
    assert_valid(contracts, "jsm", "CustomerRequestDTO", created.json())
    assert_valid(contracts, "jsm", "CustomerRequestDTO", expanded.json())


def test_approvals_status_and_comments_match_the_jsm_schemas(
    contracts, api, request_key, standin_url
):
    agent = Api(standin_url, AGENT)
    base = f"/rest/servicedeskapi/request/{request_key}"
    pending = api.get(f"{base}/approval").json()
    comment = api.post(f"{base}/comment", {"body": "Public reply", "public": True})
    api.post(f"{base}/comment", {"body": "Internal", "public": False})
    answered = agent.post(f"{base}/approval/1", {"decision": "approve"})

    assert_valid(contracts, "jsm", "PagedDTOApprovalDTO", pending)
    assert_valid(contracts, "jsm", "ApprovalDTO", answered.json())
    assert_valid(contracts, "jsm", "ApprovalDTO", api.get(f"{base}/approval/1").json())
    assert_valid(contracts, "jsm", "CommentDTO", comment.json())
    assert_valid(contracts, "jsm", "PagedDTOCommentDTO", api.get(f"{base}/comment").json())
    assert_valid(
        contracts, "jsm", "PagedDTOCustomerRequestStatusDTO", api.get(f"{base}/status").json()
    )
    assert answered.json()["finalDecision"] == "approved"


WRONG_CREDENTIALS = ("vcpay@servicedesk.example", "wrong")


@pytest.mark.parametrize(
    ("method", "path", "body", "auth", "status"),
    [
        ("GET", "/servicedesk/77", None, INTEGRATION, 404),
        ("GET", "/request/PAY-404", None, INTEGRATION, 404),
        ("POST", "/request/{key}/approval/1", {}, AGENT, 400),
        ("POST", "/request", {"serviceDeskId": 1}, INTEGRATION, 400),
        ("POST", "/request/{key}/comment", {"body": "no public flag"}, INTEGRATION, 400),
        ("GET", "/servicedesk", None, WRONG_CREDENTIALS, 401),
    ],
)
def test_jsm_errors_match_error_response(
    contracts, standin_url, request_key, method, path, body, auth, status
):
    api = Api(standin_url, auth)
    path = "/rest/servicedeskapi" + path.format(key=request_key)
    response = api.get(path) if method == "GET" else api.post(path, body)

    assert response.status_code == status
    assert_valid(contracts, "jsm", "ErrorResponse", response.json())


def test_repeated_decision_and_fault_errors_match_error_response(
    contracts, api, request_key, standin_url, sandbox
):
    agent = Api(standin_url, AGENT)
    agent.post(f"/rest/servicedeskapi/request/{request_key}/approval/1", {"decision": "decline"})
    repeated = agent.post(
        f"/rest/servicedeskapi/request/{request_key}/approval/1", {"decision": "decline"}
    )
    sandbox.fault(path="/rest/servicedeskapi/", status=429, retry_after=1, times=1)
    limited = api.get("/rest/servicedeskapi/servicedesk")

    assert (repeated.status_code, limited.status_code) == (409, 429)
    assert_valid(contracts, "jsm", "ErrorResponse", repeated.json())
    assert_valid(contracts, "jsm", "ErrorResponse", limited.json())


def test_platform_basics_match_the_platform_schemas(contracts, api, request_key):
    assert_valid(
        contracts, "platform", "ServerInformation", api.get("/rest/api/2/serverInfo").json()
    )
    assert_valid(contracts, "platform", "User", api.get("/rest/api/2/myself").json())
    for user in api.get("/rest/api/2/user/search", query="manager@clinic.example").json():
        assert_valid(contracts, "platform", "User", user)
    for field in api.get("/rest/api/2/field").json():
        assert_valid(contracts, "platform", "FieldDetails", field)
    transitions = api.get(f"/rest/api/2/issue/{request_key}/transitions").json()
    assert_valid(contracts, "platform", "Transitions", transitions)
    assert_valid(
        contracts,
        "platform",
        "JQLCountResultsBean",
        api.post("/rest/api/2/search/approximate-count", {"jql": "project = PAY"}).json(),
    )


def test_issues_and_comments_match_the_platform_schemas(contracts, api, request_key):
    api.post(f"/rest/api/2/issue/{request_key}/comment", {"body": "Public"})
    internal = api.post(
        f"/rest/api/2/issue/{request_key}/comment",
        {
            "body": "Internal",
            "properties": [{"key": "sd.public.comment", "value": {"internal": True}}],
        },
    )
    issue = api.get(f"/rest/api/2/issue/{request_key}").json()
    page = api.get(f"/rest/api/2/issue/{request_key}/comment").json()

    assert isinstance(issue["fields"]["description"], str)  # v2: plain text
    assert_valid(contracts, "platform", "IssueBean", as_v3(issue))
    assert_valid(contracts, "platform", "Comment", as_v3(internal.json()))
    assert_valid(contracts, "platform", "PageOfComments", as_v3(page))
    assert [c["jsdPublic"] for c in page["comments"]] == [True, False]


def test_enhanced_search_pages_match_search_and_reconcile_results(contracts, api, sandbox):
    sandbox.post("/bulk", {"count": 3, "description": "Clinics"})

    first = api.get("/rest/api/2/search/jql", jql="project = PAY", maxResults=2, fields="*all")
    last = api.get(
        "/rest/api/2/search/jql",
        jql="project = PAY",
        maxResults=2,
        fields="*all",
        nextPageToken=first.json()["nextPageToken"],
    )
    v3 = api.get("/rest/api/3/search/jql", jql="project = PAY", fields="description,summary")
    posted = api.post(
        "/rest/api/3/search/jql",
        {"jql": "project = PAY", "fields": ["*all"], "expand": "names", "maxResults": 5},
    )

    assert_valid(contracts, "platform", "SearchAndReconcileResults", as_v3(first.json()))
    assert_valid(contracts, "platform", "SearchAndReconcileResults", as_v3(last.json()))
    assert "nextPageToken" not in last.json()  # absent, not null: the schema says string
    assert_valid(contracts, "platform", "SearchAndReconcileResults", v3.json())
    assert_valid(contracts, "platform", "SearchAndReconcileResults", posted.json())
    assert v3.json()["issues"][0]["fields"]["description"]["type"] == "doc"


def test_platform_errors_match_error_collection(contracts, api):
    bad_jql = api.get("/rest/api/2/search/jql", jql="project = PAY AND nonsense ~ x")
    missing = api.get("/rest/api/2/issue/PAY-999")
    removed = api.get("/rest/api/2/search", jql="project = PAY")

    assert (bad_jql.status_code, missing.status_code, removed.status_code) == (400, 404, 410)
    for response in (bad_jql, missing, removed):
        assert_valid(contracts, "platform", "ErrorCollection", response.json())
    assert json.dumps(removed.json()).count("search/jql") == 1


def test_the_contract_check_itself_catches_drift(contracts, api, request_key, standin_url):
    created = api.get(f"/rest/servicedeskapi/request/{request_key}").json()
    approval = api.get(f"/rest/servicedeskapi/request/{request_key}/approval/1").json()

    assert contracts.errors("jsm", "CustomerRequestDTO", {**created, "vcpay": True})
    assert contracts.errors("jsm", "CustomerRequestDTO", {**created, "issueId": 10001})
    assert contracts.errors("jsm", "ApprovalDTO", {**approval, "finalDecision": "APPROVED"})
    assert contracts.errors("platform", "SearchAndReconcileResults", {"nextPageToken": None})
