"""The agent page: people approve, decline and move requests with plain HTML forms."""

from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
import requests

from sandbox.jira import create_jira_standin
from tests.sandbox.conftest import raise_request


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    textareas: list[str] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)


class FormReader(HTMLParser):
    """The forms on a page, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.labels: list[str] = []
        self._open: Form | None = None
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self._open = Form(attributes["action"])
            self.forms.append(self._open)
        elif tag == "input" and self._open and attributes.get("type") == "hidden":
            self._open.fields[attributes["name"]] = attributes.get("value", "")
        elif tag == "textarea" and self._open:
            self._open.textareas.append(attributes["name"])
        elif tag in ("button", "label"):
            self._in = tag
            if tag == "button" and self._open:
                self._open.buttons.append(attributes.get("aria-label", ""))

    def handle_data(self, data):
        if self._in == "label" and data.strip():
            self.labels.append(data.strip())

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None
        if tag == self._in:
            self._in = None


def read_forms(html: str) -> FormReader:
    reader = FormReader()
    reader.feed(html)
    return reader


def form_with_button(page: str, label: str) -> Form:
    found = [f for f in read_forms(page).forms if label in f.buttons]
    assert len(found) == 1, f"expected one form with a button labelled {label!r}"
    return found[0]


@pytest.fixture
def browser(standin_url):
    session = requests.Session()
    session.base = standin_url
    return session


def submit(browser, form: Form, **typed: str) -> requests.Response:
    response = browser.post(
        browser.base + form.action, data={**form.fields, **typed}, allow_redirects=False, timeout=5
    )
    assert response.status_code == 303  # post/redirect/get
    return browser.get(browser.base + response.headers["Location"], timeout=5)


def test_queue_lists_requests_with_accessible_actions(jira, sandbox, browser):
    raise_request(sandbox, jira, "Enable for North Clinic")

    page = browser.get(browser.base + "/", timeout=5)
    reader = read_forms(page.text)

    assert page.status_code == 200
    assert "Enable for North Clinic" in page.text
    assert "Telehealth Manager &lt;manager@clinic.example&gt;" in page.text
    assert "Waiting for approval" in page.text
    assert "Reason (shown to the customer)" in reader.labels
    assert {"Approve PAY-1", "Decline PAY-1", "Move to In Progress: PAY-1"} <= {
        b for f in reader.forms for b in f.buttons
    }
    assert "Resolve without approval: PAY-1" in {b for f in reader.forms for b in f.buttons}
    assert 'href="/browse/PAY-1"' in page.text
    assert "<script" not in page.text and "http" not in page.text.split("<body>")[1]
    assert browser.get(browser.base + "/servicedesk/agent", timeout=5).text == page.text


def test_approve_from_the_queue(jira, sandbox, browser, standin_url):
    raise_request(sandbox, jira)
    queue = browser.get(browser.base + "/", timeout=5).text

    after = submit(browser, form_with_button(queue, "Approve PAY-1"))

    assert "PAY-1: approved." in after.text
    assert sandbox.request("PAY-1")["approval"]["finalDecision"] == "approved"
    assert jira.issue("PAY-1").fields.status.name == "Approved"
    assert "Approve PAY-1" not in {b for f in read_forms(after.text).forms for b in f.buttons}


def test_decline_with_a_reason_leaves_a_public_comment(jira, sandbox, browser):
    raise_request(sandbox, jira)
    queue = browser.get(browser.base + "/", timeout=5).text
    form = form_with_button(queue, "Decline PAY-1")

    after = submit(browser, form, reason="Your Stripe account is not verified yet.")
    detail = browser.get(browser.base + "/browse/PAY-1", timeout=5).text

    assert form.textareas == ["reason"]
    assert "PAY-1: declined." in after.text
    assert jira.issue("PAY-1").fields.resolution.name == "Declined"
    assert [(c.body, c.jsdPublic) for c in jira.comments("PAY-1")] == [
        ("Your Stripe account is not verified yet.", True)
    ]
    assert jira.comments("PAY-1")[0].author.displayName == "Sam Agent"
    assert "Public: shared with the customer" in detail
    assert "Declined" in detail


def test_move_to_in_progress_keeps_the_approval_pending(jira, sandbox, browser):
    raise_request(sandbox, jira)
    detail = browser.get(browser.base + "/browse/PAY-1", timeout=5).text

    after = submit(browser, form_with_button(detail, "Move to In Progress: PAY-1"))

    assert "PAY-1 is now In Progress." in after.text
    assert after.url.endswith("/browse/PAY-1")
    assert sandbox.request("PAY-1")["status"] == "In Progress"
    assert sandbox.request("PAY-1")["approval"]["finalDecision"] == "pending"
    assert "Resolve without approval: PAY-1" in {
        b for f in read_forms(after.text).forms for b in f.buttons
    }


def test_detail_page_marks_internal_notes_and_adds_comments(jira, sandbox, browser):
    issue = raise_request(sandbox, jira, "Detail me")
    jira.add_comment(issue.key, "Only for agents", is_internal=True)
    detail = browser.get(browser.base + "/browse/PAY-1", timeout=5).text
    comment_form = next(f for f in read_forms(detail).forms if f.action.endswith("/comment"))

    after = submit(browser, comment_form, body="Thanks, looking now.")

    assert "Detail me" in detail and "Clinics: North, South" in detail
    assert "Internal note" in detail
    assert "Only for agents" in detail
    assert "PAY-1: reply added." in after.text
    assert jira.comments("PAY-1")[-1].body == "Thanks, looking now."
    assert jira.comments("PAY-1")[-1].jsdPublic is True


def test_a_second_decision_is_refused_with_a_message(jira, sandbox, browser):
    raise_request(sandbox, jira)
    queue = browser.get(browser.base + "/", timeout=5).text
    approve = form_with_button(queue, "Approve PAY-1")
    submit(browser, approve)

    again = submit(browser, approve)

    assert "already been answered" in again.text
    assert sandbox.request("PAY-1")["approval"]["finalDecision"] == "approved"


def test_forms_only_redirect_within_the_site():
    app = create_jira_standin()
    client = app.test_client()
    client.post("/_sandbox/bulk", json={"count": 1})

    response = client.post(
        "/agent/requests/PAY-1/decision", data={"decision": "approve", "next": "//evil.example/"}
    )
    missing = client.get("/browse/PAY-99")

    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert missing.status_code == 404
    assert "PAY-99 does not exist" in missing.get_data(as_text=True)
