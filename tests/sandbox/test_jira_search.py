"""JQL search: enhanced search with page tokens, the legacy search, time zones, search lag."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from jira import JIRAError

from tests.sandbox.conftest import INTEGRATION, jira_client, raise_request

FILTER = 'project = PAY AND "Request Type" = "Enable Payment Gateway"'
FIELDS = ["status", "resolution", "updated", "summary"]


def keys(issues) -> list[str]:
    return [issue.key for issue in issues]


def moment(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def minute_literal(at: datetime, zone: str) -> str:
    return at.astimezone(ZoneInfo(zone)).strftime('"%Y/%m/%d %H:%M"')


def search_jql(url: str, version: str = "2", **params) -> requests.Response:
    return requests.get(
        f"{url}/rest/api/{version}/search/jql", params=params, auth=INTEGRATION, timeout=5
    )


def test_search_issues_uses_enhanced_search_on_cloud(jira, sandbox):
    sandbox.post("/bulk", {"count": 3})
    sandbox.answer("DELETE", "/calls")

    found = jira.search_issues(f"{FILTER} ORDER BY key DESC")
    paths = [call["path"] for call in sandbox.calls()]

    assert keys(found) == ["PAY-3", "PAY-2", "PAY-1"]
    assert found[0].fields.status.name == "Waiting for approval"
    assert paths == ["/rest/api/2/field", "/rest/api/2/search/jql"]


def test_updated_cursor_is_read_in_the_users_time_zone(jira, sandbox):
    zone = jira.myself()["timeZone"]
    issue = raise_request(sandbox, jira)
    updated = moment(issue.fields.updated)
    floor = updated.replace(second=0, microsecond=0)

    at_cursor = jira.search_issues(f"{FILTER} AND updated >= {minute_literal(floor, zone)}")
    after_cursor = jira.search_issues(
        f"{FILTER} AND updated >= {minute_literal(floor + timedelta(minutes=1), zone)}"
    )
    # The same wall-clock numbers written in UTC mean eleven (or ten) hours earlier in Sydney.
    misread = jira.search_issues(
        f"{FILTER} AND updated >= {minute_literal(floor + timedelta(minutes=1), 'UTC')}"
    )
    dashes = jira.search_issues(
        f'{FILTER} AND updated > "{floor.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"'
    )
    relative = jira.search_issues(f"{FILTER} AND updated >= -5m AND created > -1d")
    day_only = jira.search_issues(f'{FILTER} AND created >= "{floor:%Y-%m-%d}"')

    assert zone == "Australia/Sydney"
    assert keys(at_cursor) == ["PAY-1"]
    assert keys(after_cursor) == []
    assert keys(misread) == ["PAY-1"]
    assert keys(dashes) == ["PAY-1"]
    assert keys(relative) == ["PAY-1"]
    assert keys(day_only) == ["PAY-1"]


def test_another_time_zone_changes_times_and_dates(other_standin):
    url = other_standin(time_zone="America/New_York")
    jira = jira_client(url)
    issue = jira.create_customer_request(
        {
            "serviceDeskId": 1,
            "requestTypeId": 10,
            "requestFieldValues": {"summary": "New York"},
            "raiseOnBehalfOf": jira.create_customer("ny@clinic.example", "NY").accountId,
        }
    )
    updated = moment(issue.fields.updated)
    literal = minute_literal(updated.replace(second=0, microsecond=0), "America/New_York")

    assert jira.myself()["timeZone"] == "America/New_York"
    assert issue.fields.updated[-5:] in ("-0500", "-0400")
    assert keys(jira.search_issues(f"project = PAY AND updated >= {literal}")) == [issue.key]


def test_order_by_updated_then_numeric_key(jira, sandbox, standin_url):
    sandbox.post("/bulk", {"count": 11})
    sandbox.post("/requests/PAY-2/decide", {"decision": "approve"})

    by_key = jira.search_issues(f"{FILTER} ORDER BY key ASC", maxResults=20)
    by_updated = jira.search_issues(f"{FILTER} ORDER BY updated ASC, key ASC", maxResults=20)
    newest = jira.search_issues(f"{FILTER} ORDER BY updated DESC", maxResults=1)

    assert keys(by_key) == [f"PAY-{n}" for n in range(1, 12)]
    assert keys(by_updated)[-1] == "PAY-2"
    assert keys(by_updated)[:3] == ["PAY-1", "PAY-3", "PAY-4"]
    assert keys(newest) == ["PAY-2"]


def test_pages_follow_next_page_token_past_one_hundred(jira, sandbox):
    sandbox.post("/bulk", {"count": 205})
    jql = f"{FILTER} ORDER BY key ASC"

    first = jira.enhanced_search_issues(jql, maxResults=100, fields=FIELDS)
    second = jira.enhanced_search_issues(
        jql, nextPageToken=first.nextPageToken, maxResults=100, fields=FIELDS
    )
    third = jira.enhanced_search_issues(
        jql, nextPageToken=second.nextPageToken, maxResults=100, fields=FIELDS
    )
    everything = jira.enhanced_search_issues(jql, maxResults=False, fields=FIELDS)
    capped = jira.enhanced_search_issues(jql, maxResults=500, fields=FIELDS)

    assert keys(first)[0] == "PAY-1" and keys(first)[-1] == "PAY-100"
    assert keys(second)[0] == "PAY-101"
    assert keys(third) == ["PAY-201", "PAY-202", "PAY-203", "PAY-204", "PAY-205"]
    assert third.nextPageToken is None
    assert keys(everything) == [f"PAY-{n}" for n in range(1, 206)]
    assert len(capped) == 100
    assert set(first[0].raw["fields"]) == set(FIELDS)


def test_raw_enhanced_search_shape_and_parameters(sandbox, standin_url, jira):
    sandbox.post("/bulk", {"count": 3, "description": "Clinics: North"})

    first = search_jql(standin_url, jql=f"{FILTER} ORDER BY key", maxResults=2, fields="key,status")
    last = search_jql(
        standin_url,
        jql=f"{FILTER} ORDER BY key",
        maxResults=2,
        fields=["summary", "status"],
        nextPageToken=first.json()["nextPageToken"],
    )
    ids_only = search_jql(standin_url, version="3", jql=FILTER)
    posted = requests.post(
        f"{standin_url}/rest/api/3/search/jql",
        json={"jql": FILTER, "fields": ["description"], "maxResults": 1, "expand": None},
        auth=INTEGRATION,
        timeout=5,
    ).json()
    wrong_token = search_jql(standin_url, jql="project = PAY", nextPageToken="bm9wZQ")
    all_but = search_jql(
        standin_url, jql="key = PAY-1", fields=["*all", "-comment"], expand="names"
    )

    assert first.json()["isLast"] is False
    assert set(first.json()["issues"][0]["fields"]) == {"status"}
    assert "nextPageToken" not in last.json()
    assert last.json()["isLast"] is True
    assert [i["key"] for i in last.json()["issues"]] == ["PAY-3"]
    assert ids_only.json()["issues"][0] == {"id": "10003"}
    assert posted["issues"][0]["fields"]["description"]["type"] == "doc"  # v3 speaks ADF
    assert wrong_token.status_code == 400
    assert {"summary", "assignee", "customfield_10010"} <= set(
        all_but.json()["issues"][0]["fields"]
    )
    assert "comment" not in all_but.json()["issues"][0]["fields"]
    assert all_but.json()["issues"][0]["names"]["customfield_10010"] == "Request Type"
    assert len(jira.search_issues(FILTER, use_post=True, maxResults=5)) == 3
    assert jira.approximate_issue_count("project = PAY") == 3


@pytest.mark.parametrize(
    ("jql", "expected"),
    [
        ('key in (PAY-1, PAY-3, PAY-4) AND status = "Waiting for approval"', ["PAY-1", "PAY-4"]),
        ("key = PAY-2", ["PAY-2"]),
        ('status in ("Approved", "Declined")', ["PAY-2", "PAY-3"]),
        ("project = PAY AND statusCategory = Done", ["PAY-2", "PAY-3"]),
        ("project = PAY AND statusCategory != Done", ["PAY-1", "PAY-4"]),
        ('project = PAY AND resolution = "Declined"', ["PAY-3"]),
        ("project = PAY AND resolution IS EMPTY", ["PAY-1", "PAY-4"]),
        ('issuetype = "Service Request with Approvals" AND key in (PAY-4)', ["PAY-4"]),
        ('"Customer Request Type" = "Enable Payment Gateway" AND key = PAY-1', ["PAY-1"]),
        ('cf[10010] = "Enable Payment Gateway" AND key = PAY-1', ["PAY-1"]),
        ('summary ~ "vcpay-C0FFEE"', ["PAY-4"]),
        ('text ~ "north clinic"', ["PAY-1"]),
        ("(key = PAY-1 OR key = PAY-4) AND NOT status = Approved", ["PAY-1", "PAY-4"]),
        ("project = pay and STATUS = approved", ["PAY-2"]),
    ],
)
def test_jql_subset(jira, sandbox, jql, expected):
    raise_request(sandbox, jira, "Enable for the North Clinic")
    raise_request(sandbox, jira, "Second")
    raise_request(sandbox, jira, "Third")
    raise_request(sandbox, jira, "Fourth [vcpay-c0ffee]")
    sandbox.post("/requests/PAY-2/decide", {"decision": "approve"})
    sandbox.post("/requests/PAY-3/decide", {"decision": "decline", "comment": "No Stripe"})

    assert keys(jira.search_issues(f"{jql} ORDER BY key ASC")) == expected


@pytest.mark.parametrize(
    ("jql", "message"),
    [
        ("fixVersion = 1.0", "does not exist"),
        ("assignee WAS currentUser()", "operator"),
        ("project = PAY AND created >= endOfDay()", "function"),
        ("project = NOPE", "does not exist"),
        ('project = PAY AND updated >= "27 November"', "invalid"),
        ("project = PAY AND summary = exact", "not supported"),
        ("project = PAY ORDER BY priority", "sort"),
        ("project = PAY AND (key = PAY-1", "expecting"),
        ("ORDER BY key", "Unbounded"),
        ("", "Unbounded"),
    ],
)
def test_unsupported_jql_is_refused_with_jira_errors(standin_url, jql, message):
    response = search_jql(standin_url, jql=jql)

    assert response.status_code == 400
    assert response.json()["errors"] == {}
    assert message in response.json()["errorMessages"][0]


def test_legacy_search_is_gone_on_cloud(standin_url):
    legacy = jira_client(standin_url, get_server_info=False)  # takes the old /search path
    with pytest.raises(JIRAError) as gone:
        legacy.search_issues("project = PAY")
    posted = requests.post(
        f"{standin_url}/rest/api/2/search",
        json={"jql": "project = PAY"},
        auth=INTEGRATION,
        timeout=5,
    )

    assert gone.value.status_code == 410
    assert "migrate to the /rest/api/3/search/jql API" in gone.value.text
    assert posted.status_code == 410


def test_legacy_search_works_on_server(other_standin):
    url = other_standin(deployment_type="Server")
    jira = jira_client(url)
    requests.post(f"{url}/_sandbox/bulk", json={"count": 7}, timeout=5).raise_for_status()

    page = jira.search_issues("project = PAY ORDER BY key ASC", startAt=2, maxResults=3)
    everything = jira.search_issues("project = PAY ORDER BY key ASC", maxResults=False)
    raw = requests.get(
        f"{url}/rest/api/2/search",
        params={"jql": "project = PAY", "startAt": 5, "maxResults": 50, "validateQuery": "True"},
        auth=INTEGRATION,
        timeout=5,
    ).json()

    assert jira.deploymentType == "Server"
    assert not jira._is_cloud
    assert keys(page) == ["PAY-3", "PAY-4", "PAY-5"]
    assert page.total == 7
    assert len(everything) == 7
    assert (raw["startAt"], raw["total"], len(raw["issues"])) == (5, 7, 2)


def test_search_lags_behind_changes_but_issue_reads_are_current(jira, sandbox, standin_url):
    older = raise_request(sandbox, jira, "older")
    # Jira's clock moves on a minute, so older is older than the lag: search knows it, as it
    # was. The lag is long enough that what follows is still within it on a busy machine.
    sandbox.post("/clock", {"offset_seconds": 60})
    sandbox.post("/search-lag", {"seconds": 30})
    newer = raise_request(sandbox, jira, "newer")
    sandbox.post(f"/requests/{older.key}/decide", {"decision": "approve"})

    lagging = jira.search_issues("project = PAY ORDER BY key ASC")
    reconciled = jira.enhanced_search_issues(
        "project = PAY ORDER BY key ASC", reconcileIssues=[int(newer.id)]
    )
    current = jira.issue(older.key)
    sandbox.post("/clock", {"offset_seconds": 120})  # the lag has passed
    caught_up = jira.search_issues("project = PAY ORDER BY key ASC")

    assert keys(lagging) == [older.key]
    assert lagging[0].fields.status.name == "Waiting for approval"
    assert keys(reconciled) == [older.key, newer.key]
    assert current.fields.status.name == "Approved"
    assert keys(caught_up) == [older.key, newer.key]
    assert caught_up[0].fields.status.name == "Approved"
