"""Injected faults: rate limits, outages, slow answers, and work done before a timeout."""

import time

import pytest
import requests
from jira import JIRAError

from tests.sandbox.conftest import INTEGRATION, jira_client, raise_request


def test_429_carries_an_integer_retry_after_and_jira_body(jira, sandbox):
    sandbox.fault(method="GET", path="/rest/api/2/myself", status=429, retry_after=2, times=1)

    with pytest.raises(JIRAError) as limited:
        jira.myself()
    afterwards = jira.myself()

    response = limited.value.response
    assert limited.value.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.headers["RateLimit-Reason"] == "jira-burst-based"
    assert response.json() == {"errorMessages": ["Rate limit exceeded."], "errors": {}}
    assert afterwards["accountId"] == "557058:vcpay-integration"
    assert [c["status"] for c in sandbox.calls()][-2:] == [429, 200]


def test_the_library_honours_retry_after_when_it_may_retry(sandbox, standin_url):
    patient = jira_client(standin_url, max_retries=1)
    sandbox.fault(path="/rest/api/2/myself", status=429, retry_after=0, times=1)

    started = time.monotonic()
    assert patient.myself()["timeZone"] == "Australia/Sydney"
    assert time.monotonic() - started < 5
    assert [c["status"] for c in sandbox.calls() if c["path"].endswith("myself")] == [429, 200]


def test_503_on_the_servicedesk_api_uses_its_error_shape(jira, sandbox):
    sandbox.fault(path="/rest/servicedeskapi/", status=503, times=2)

    with pytest.raises(JIRAError) as unavailable:
        jira.service_desks()
    with pytest.raises(JIRAError):
        jira.service_desk("1")
    recovered = jira.service_desks()

    assert unavailable.value.status_code == 503
    assert "Retry-After" not in unavailable.value.response.headers
    assert set(unavailable.value.response.json()) == {"errorMessage", "i18nErrorMessage"}
    assert recovered[0].projectKey == "PAY"


def test_faults_match_method_and_path_prefix(jira, sandbox, standin_url):
    sandbox.fault(method="POST", path="/rest/api/2/issue/", status=500)
    issue = raise_request(sandbox, jira)

    with pytest.raises(JIRAError) as failed:
        jira.add_comment(issue.key, "refused")
    read = jira.issue(issue.key)  # a GET on the same prefix is untouched
    listed = sandbox.answer("GET", "/faults").json()
    sandbox.answer("DELETE", "/faults")

    assert failed.value.status_code == 500
    assert read.key == issue.key
    assert jira.comments(issue.key) == []
    assert listed[0]["method"] == "POST" and listed[0]["times"] is None
    assert jira.add_comment(issue.key, "accepted").body == "accepted"


def test_a_delay_beyond_the_client_timeout_is_a_read_timeout(sandbox, standin_url):
    impatient = jira_client(standin_url, timeout=0.3)
    sandbox.fault(path="/rest/api/2/myself", delay=5.0, times=1)

    with pytest.raises(requests.exceptions.ReadTimeout):
        impatient.myself()
    assert impatient.myself()["accountId"] == "557058:vcpay-integration"


def test_a_delay_within_the_timeout_only_slows_the_answer(jira, sandbox):
    sandbox.fault(path="/rest/api/2/serverInfo", delay=0.3, times=1)

    started = time.monotonic()
    info = jira.server_info()

    assert info["deploymentType"] == "Cloud"
    assert time.monotonic() - started >= 0.3


def test_after_effect_creates_the_request_although_the_client_times_out(sandbox, standin_url):
    impatient = jira_client(standin_url, timeout=0.4)
    customer = sandbox.customer()
    sandbox.fault(
        method="POST", path="/rest/servicedeskapi/request", delay=5.0, after_effect=True, times=1
    )

    with pytest.raises(requests.exceptions.ReadTimeout):
        impatient.create_customer_request(
            {
                "serviceDeskId": 1,
                "requestTypeId": 10,
                "requestFieldValues": {"summary": "Enable [vcpay-timeout-1]"},
                "raiseOnBehalfOf": customer,
            }
        )
    found = impatient.search_issues('project = PAY AND summary ~ "vcpay-timeout-1"')

    assert [issue.key for issue in found] == ["PAY-1"]
    assert sandbox.request("PAY-1")["summary"] == "Enable [vcpay-timeout-1]"


def test_after_effect_with_a_status_does_the_work_then_fails(jira, sandbox):
    issue = raise_request(sandbox, jira)
    sandbox.fault(method="POST", path="/rest/api/2/issue/", status=502, after_effect=True, times=1)

    with pytest.raises(JIRAError) as failed:
        jira.add_comment(issue.key, "sent once, answered badly")

    assert failed.value.status_code == 502
    assert [c.body for c in jira.comments(issue.key)] == ["sent once, answered badly"]


def test_faults_apply_before_authentication(sandbox, standin_url):
    sandbox.fault(path="/rest/api/2/myself", status=503, retry_after=1, times=1)

    unauthenticated = requests.get(f"{standin_url}/rest/api/2/myself", timeout=5)
    authenticated = requests.get(f"{standin_url}/rest/api/2/myself", auth=INTEGRATION, timeout=5)

    assert unauthenticated.status_code == 503
    assert unauthenticated.headers["Retry-After"] == "1"
    assert authenticated.status_code == 200


@pytest.mark.parametrize(
    "spec",
    [
        {"path": "/rest"},
        {"status": 200},
        {"status": 429, "delay": -1},
        {"status": "429"},
        {"status": 503, "times": 0},
    ],
)
def test_malformed_faults_are_refused(sandbox, spec):
    response = sandbox.answer("POST", "/faults", json=spec)

    assert response.status_code == 400
    assert response.json()["error"]
    assert sandbox.answer("GET", "/faults").json() == []
