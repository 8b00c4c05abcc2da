"""The Jira stand-in's admin webhook: sent after each change, signed and retried as Jira's."""

import hashlib
import hmac

import requests

from sandbox.jira.control_client import JiraControl
from tests.sandbox.conftest import jira_client, raise_request
from tests.sandbox.stripe_helpers import WebhookReceiver

SECRET = "a-webhook-secret"


def standin_sending_to(other_standin, receiver: WebhookReceiver, secret: str = SECRET) -> str:
    return other_standin(
        webhook_url=receiver.url, webhook_secret=secret, webhook_retry_seconds=(0.1, 0.2)
    )


def test_each_change_is_posted_signed_with_the_issue(other_standin):
    receiver = WebhookReceiver()
    try:
        url = standin_sending_to(other_standin, receiver)
        sandbox = JiraControl(url)
        issue = raise_request(sandbox, jira_client(url))
        sandbox.post(f"/requests/{issue.key}/decide", {"decision": "approve"})
        created, approved = receiver.wait_for(2)
    finally:
        receiver.stop()
    assert created["event"]["webhookEvent"] == "jira:issue_created"
    assert approved["event"]["webhookEvent"] == "jira:issue_updated"
    assert approved["event"]["issue"]["key"] == issue.key
    assert approved["event"]["issue"]["fields"]["status"]["name"] == "Approved"
    for delivery in (created, approved):
        expected = hmac.new(SECRET.encode(), delivery["body"].encode(), hashlib.sha256)
        assert delivery["headers"]["X-Hub-Signature"] == f"sha256={expected.hexdigest()}"
        assert delivery["headers"]["X-Atlassian-Webhook-Identifier"]
        assert "X-Atlassian-Webhook-Retry" not in delivery["headers"]


def test_a_refused_delivery_is_retried_with_the_same_identifier(other_standin):
    receiver = WebhookReceiver()
    receiver.answer_with(503, 429)
    try:
        url = standin_sending_to(other_standin, receiver)
        raise_request(JiraControl(url), jira_client(url))
        first, second, third = receiver.wait_for(3)
        requests.post(f"{url}/_sandbox/webhooks/wait", json={"seconds": 5}, timeout=10)
        attempts = requests.get(f"{url}/_sandbox/webhooks", timeout=5).json()["attempts"]
    finally:
        receiver.stop()
    identifiers = {d["headers"]["X-Atlassian-Webhook-Identifier"] for d in (first, second, third)}
    assert len(identifiers) == 1
    assert [d["headers"].get("X-Atlassian-Webhook-Retry") for d in (first, second, third)] == [
        None,
        "1",
        "2",
    ]
    assert [a["status_code"] for a in attempts] == [503, 429, 200]


def test_a_4xx_other_than_jiras_retried_ones_is_not_retried(other_standin):
    receiver = WebhookReceiver()
    receiver.answer_with(400)
    try:
        url = standin_sending_to(other_standin, receiver)
        raise_request(JiraControl(url), jira_client(url))
        receiver.wait_for(1)
        idle = requests.post(f"{url}/_sandbox/webhooks/wait", json={"seconds": 5}, timeout=10)
    finally:
        receiver.stop()
    assert idle.json() == {"idle": True}
    assert len(receiver.received) == 1


def test_without_a_secret_nothing_is_signed_and_without_a_url_nothing_is_sent(other_standin):
    receiver = WebhookReceiver()
    try:
        url = standin_sending_to(other_standin, receiver, secret="")
        sandbox = JiraControl(url)
        raise_request(sandbox, jira_client(url))
        [unsigned] = receiver.wait_for(1)
        assert "X-Hub-Signature" not in unsigned["headers"]
        assert sandbox.post("/webhooks/wait", {"seconds": 5}) == {"idle": True}  # recorded

        answer = sandbox.answer("PUT", "/webhooks", json={"url": "", "secret": ""})
        assert answer.json()["url"] == ""
        raise_request(sandbox, jira_client(url), summary="Another")
        assert sandbox.post("/webhooks/wait", {"seconds": 5}) == {"idle": True}
        assert len(sandbox.answer("GET", "/webhooks").json()["attempts"]) == 1
    finally:
        receiver.stop()
    assert len(receiver.received) == 1


def test_the_webhook_control_refuses_what_is_not_a_string(sandbox):
    answer = sandbox.answer("PUT", "/webhooks", json={"url": 5})
    assert answer.status_code == 400
    assert "'url' and 'secret' must be strings" in answer.json()["error"]


def test_a_new_endpoint_drops_pending_retries_and_sending_goes_on(other_standin):
    old, new = WebhookReceiver(), WebhookReceiver()
    old.answer_with(503)
    try:
        url = other_standin(
            webhook_url=old.url, webhook_secret=SECRET, webhook_retry_seconds=(5.0,)
        )
        sandbox = JiraControl(url)
        first = raise_request(sandbox, jira_client(url))
        old.wait_for(1)  # refused: a retry is due in 5 s
        sandbox.answer("PUT", "/webhooks", json={"url": new.url, "secret": "another-secret"})
        assert sandbox.post("/webhooks/wait", {"seconds": 5}) == {"idle": True}
        second = raise_request(sandbox, jira_client(url), summary="Another")
        [delivery] = new.wait_for(1)
        sandbox.answer("PUT", "/webhooks", json={"url": "", "secret": ""})
        raise_request(sandbox, jira_client(url), summary="Not sent")
        assert sandbox.post("/webhooks/wait", {"seconds": 5}) == {"idle": True}
    finally:
        old.stop()
        new.stop()
    assert [d["event"]["issue"]["key"] for d in old.received] == [first.key]
    assert [d["event"]["issue"]["key"] for d in new.received] == [second.key]
    assert delivery["headers"]["X-Hub-Signature"].startswith("sha256=")
