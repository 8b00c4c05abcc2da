"""The stand-in's JQL takes every field its own ``/field`` lists as searchable, under each of
its clause names, with the functions Jira offers for them; ``fields`` leaves out what a minus
names; a search for ids alone pages up to 5,000 issues."""

import pytest
import requests

from tests.sandbox.conftest import INTEGRATION, raise_request

# A value each kind of field (its schema type) takes, and the operator for it.
SAMPLE_CLAUSES = {
    "string": '~ "gateway"',
    "datetime": ">= -1d",
    "user": "= currentUser()",
    "array": "= gateway",
    "status": '= "Waiting for approval"',
    "statusCategory": "= Done",
    "resolution": "= Declined",
    "issuetype": '= "Service Request with Approvals"',
    "project": "= PAY",
    "priority": "= Medium",
    "comments-page": '~ "thanks"',
    "sd-customerrequesttype": '= "Enable Payment Gateway"',
}
# Text fields take ~; the issue key takes =.
BY_FIELD = {"issuekey": "= PAY-1"}


def searchable_clauses(url: str) -> list[str]:
    fields = requests.get(f"{url}/rest/api/2/field", auth=INTEGRATION, timeout=5).json()
    return [
        f'"{name}" {BY_FIELD.get(field["id"]) or SAMPLE_CLAUSES[field["schema"]["type"]]}'
        for field in fields
        if field["searchable"]
        for name in field["clauseNames"]
    ]


def search(url: str, jql: str, **params) -> requests.Response:
    return requests.get(
        f"{url}/rest/api/2/search/jql",
        params={"jql": f"project = PAY AND {jql}", **params},
        auth=INTEGRATION,
        timeout=5,
    )


def found_keys(url: str, jql: str) -> list[str]:
    answer = search(url, f"{jql} ORDER BY key ASC", fields="key")
    assert answer.status_code == 200, answer.text
    return [issue["key"] for issue in answer.json()["issues"]]


def test_every_clause_name_of_every_searchable_field_is_taken(standin_url):
    clauses = searchable_clauses(standin_url)
    refused = {
        clause: answer.json()["errorMessages"]
        for clause in clauses
        if (answer := search(standin_url, clause)).status_code != 200
    }

    assert len(clauses) == 29  # every clause name of the 19 fields /field lists
    assert refused == {}


def test_people_priority_and_labels(jira, sandbox, standin_url):
    customer = sandbox.customer("pat@clinic.example", "Pat Manager")
    raise_request(sandbox, jira, "First", raiseOnBehalfOf=customer)
    raise_request(sandbox, jira, "Second")

    assert found_keys(standin_url, "creator = currentUser()") == ["PAY-1", "PAY-2"]
    assert found_keys(standin_url, "reporter = currentUser()") == []
    assert found_keys(standin_url, '"reporter" = "pat@clinic.example"') == ["PAY-1"]
    assert found_keys(standin_url, "reporter in (currentUser(), pat@clinic.example)") == ["PAY-1"]
    assert found_keys(standin_url, "assignee is EMPTY") == ["PAY-1", "PAY-2"]
    assert found_keys(standin_url, "assignee = currentUser()") == []
    # As in Jira, != and NOT IN never match an empty field.
    assert found_keys(standin_url, "assignee != currentUser()") == []
    assert found_keys(standin_url, "labels is EMPTY") == ["PAY-1", "PAY-2"]
    assert found_keys(standin_url, "labels not in (gateway)") == []
    assert found_keys(standin_url, "priority = Medium AND priority in (3, High)") == [
        "PAY-1",
        "PAY-2",
    ]


def test_start_of_day_and_the_comment_field(jira, sandbox, standin_url):
    issue = raise_request(sandbox, jira)
    jira.add_comment(issue.key, "Thanks, we are on it")
    sandbox.post("/clock", {"offset_seconds": 2 * 86_400})
    raise_request(sandbox, jira, "Two days later")

    assert found_keys(standin_url, "created >= startOfDay()") == ["PAY-2"]
    assert found_keys(standin_url, "created < startOfDay()") == ["PAY-1"]
    assert found_keys(standin_url, 'comment ~ "on it"') == ["PAY-1"]
    assert found_keys(standin_url, "statusCategoryChangedDate <= now()") == ["PAY-1", "PAY-2"]


def test_a_minus_leaves_one_field_out(jira, sandbox, standin_url):
    issue = raise_request(sandbox, jira)

    every = requests.get(
        f"{standin_url}/rest/api/2/issue/{issue.key}", auth=INTEGRATION, timeout=5
    ).json()["fields"]
    but_description = requests.get(
        f"{standin_url}/rest/api/2/issue/{issue.key}",
        params={"fields": "-description"},
        auth=INTEGRATION,
        timeout=5,
    ).json()["fields"]
    searched = search(standin_url, "key = PAY-1", fields="-description,-comment").json()
    both = search(standin_url, "key = PAY-1", fields="*all,-comment").json()

    assert set(every) - set(but_description) == {"description"}
    assert set(every) - set(searched["issues"][0]["fields"]) == {"description", "comment"}
    assert set(every) - set(both["issues"][0]["fields"]) == {"comment"}


@pytest.mark.parametrize(
    ("fields", "first_page"),
    [({}, 120), ({"fields": "id"}, 120), ({"fields": "key"}, 120), ({"fields": "summary"}, 100)],
)
def test_ids_alone_page_up_to_5000(sandbox, standin_url, fields, first_page):
    sandbox.post("/bulk", {"count": 120})

    page = search(standin_url, "summary ~ Enable", maxResults=5000, **fields).json()

    assert len(page["issues"]) == first_page
    assert page["isLast"] is (first_page == 120)
    assert ("nextPageToken" in page) is (first_page < 120)
    if fields.get("fields") == "key":
        assert set(page["issues"][0]) == {"id", "key"}
    elif not fields:
        assert set(page["issues"][0]) == {"id"}
