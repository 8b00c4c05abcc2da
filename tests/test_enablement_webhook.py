"""Jira's admin webhook: a signed nudge that makes vcpay look at one request before the next
poll. Over real HTTP: the stand-in posts to vcpay served in a thread; the queued task is
taken from the broker and run as a worker runs it."""

import hashlib
import hmac
import json

import pytest
from sqlalchemy import func, select

from sandbox.jira.control_client import JiraControl
from tests.sandbox.conftest import start_jira_standin, stop_jira_standin
from tests.stripe_standin import served
from tests.test_enablement_jira import raised_request, use_standin
from vcpay import create_app
from vcpay.enablement import polling
from vcpay.enablement.models import EnablementRequest, RequestState
from vcpay.enablement.tasks import check_service_desk_request
from vcpay.extensions import db
from vcpay.integrations.servicedesk import ServiceDesk, forget_clients
from vcpay.mail.models import OutboundEmail

CHECK_TASK = "vcpay.enablement.check_service_desk_request"


@pytest.fixture(scope="module")
def standin():
    base_url, server = start_jira_standin(webhook_retry_seconds=(0.1, 0.2))
    yield base_url
    stop_jira_standin(server)


@pytest.fixture
def jira(app, standin):
    yield use_standin(app, standin)
    JiraControl(standin).send_webhooks_to("")
    forget_clients()


@pytest.fixture
def desk(app, jira):
    return ServiceDesk.from_config(app.config)


def send_webhooks_to_vcpay(jira: JiraControl, vcpay_url: str, secret: str) -> None:
    jira.send_webhooks_to(f"{vcpay_url}/webhooks/jira", secret)


def take_check(queue) -> str:
    message = queue.get(timeout=2)
    assert message.headers["task"] == CHECK_TASK
    [key] = message.decode()[0]
    message.ack()
    return key


def queued_checks(queue) -> list[str]:
    """The keys of the checks waiting in the broker (other tasks, such as emails, dropped)."""
    keys = []
    while queue.qsize():
        message = queue.get(timeout=1)
        if message.headers["task"] == CHECK_TASK:
            keys.append(message.decode()[0][0])
        message.ack()
    return keys


def signed(body: bytes, secret: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha256={digest}", "Content-Type": "application/json"}


def approved_emails() -> int:
    query = select(func.count()).select_from(OutboundEmail)
    return db.session.scalar(query.where(OutboundEmail.dedupe_key.like("%approved%")))


def test_an_approval_is_applied_on_its_webhook_while_search_still_lags(
    app, demo, desk, jira, broker
):
    request = raised_request(demo, desk)
    broker.clear()  # the emails raising queued
    jira.post("search-lag", {"seconds": 600})  # a poll would not see the decision for 10 min
    with served(app) as vcpay_url:
        send_webhooks_to_vcpay(jira, vcpay_url, app.config["JIRA_WEBHOOK_SECRET"])
        jira.decide(request.jira_key, "approve")
        assert jira.post("webhooks/wait", {"seconds": 10}) == {"idle": True}
    [delivery] = jira.webhooks()["attempts"]
    assert (delivery["key"], delivery["status_code"]) == (request.jira_key, 202)

    key = take_check(broker)
    assert key == request.jira_key
    assert polling.poll(desk).changed == []  # search has not caught up
    check_service_desk_request(key)  # what the worker runs

    request = db.session.get(EnablementRequest, request.id)
    assert request.state == RequestState.APPROVED
    assert all(clinic.gateway_enabled for clinic in demo.clinics)
    emails = approved_emails()
    assert emails > 0

    # The same delivery again (Jira duplicates, or someone replays it): nothing happens twice.
    payload = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": key}}).encode()
    answer = app.test_client().post(
        "/webhooks/jira", data=payload, headers=signed(payload, app.config["JIRA_WEBHOOK_SECRET"])
    )
    assert (answer.status_code, answer.json) == (200, {"key": key, "queued": False})
    check_service_desk_request(key)
    assert approved_emails() == emails
    assert queued_checks(broker) == []


def test_a_poll_behind_the_webhook_does_not_apply_an_older_copy(demo, desk, jira):
    """The webhook's look reads the issue itself; search lags. What search then returns is
    older than what was applied, and must not be applied again."""
    request = raised_request(demo, desk)
    jira.post("clock", {"offset_seconds": 300})
    jira.move(request.jira_key, "In Progress")  # by hand, approval pending: needs review
    assert polling.check(desk, request.jira_key)
    request = db.session.get(EnablementRequest, request.id)
    assert (request.state, request.jira_status) == (RequestState.NEEDS_REVIEW, "In Progress")
    jira.post("search-lag", {"seconds": 120})  # search still shows the request as raised
    assert polling.poll(desk).changed == []
    request = db.session.get(EnablementRequest, request.id)
    assert (request.state, request.jira_status) == (RequestState.NEEDS_REVIEW, "In Progress")


def test_a_look_jira_cannot_answer_is_left_to_the_next_poll(app, demo, desk, jira):
    request = raised_request(demo, desk)
    jira.decide(request.jira_key, "decline", "No Stripe account yet.")
    jira.fault(path="/rest/api/2/issue", status=503, times=None)
    check_service_desk_request(request.jira_key)  # logs and gives up: no exception, no change
    assert db.session.get(EnablementRequest, request.id).state == RequestState.RAISED
    jira.clear_faults()
    assert polling.poll(desk).changed == [request.jira_key]
    assert db.session.get(EnablementRequest, request.id).state == RequestState.DECLINED


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({}, b'{"issue": {"key": "PAY-1"}}', "No X-Hub-Signature header"),
        ({"X-Hub-Signature": "sha256=00"}, b'{"issue": {"key": "PAY-1"}}', "does not match"),
        ({"X-Hub-Signature": "sha256=\u00e9"}, b'{"issue": {"key": "PAY-1"}}', "does not match"),
        ("wrong secret", b'{"issue": {"key": "PAY-1"}}', "does not match"),
        ("sha1", b'{"issue": {"key": "PAY-1"}}', "does not match"),
        ("good", b"not json", "not JSON"),
    ],
)
def test_unsigned_or_badly_signed_webhooks_are_refused(
    app, client, demo, desk, jira, broker, headers, body, message
):
    raised_request(demo, desk)  # PAY-1, open
    broker.clear()
    secret = app.config["JIRA_WEBHOOK_SECRET"]
    if headers == "good":
        headers = signed(body, secret)
    elif headers == "wrong secret":
        headers = signed(body, "not-the-secret")
    elif headers == "sha1":
        digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
        headers = {"X-Hub-Signature": f"sha1={digest}"}
    answer = client.post("/webhooks/jira", data=body, headers=headers)
    assert answer.status_code == 400
    assert message in answer.json["error"]
    assert queued_checks(broker) == []


@pytest.mark.parametrize(
    "event",
    [
        {"webhookEvent": "jira:issue_updated", "issue": {"key": "PAY-999"}},  # not vcpay's
        {"webhookEvent": "jira:version_released", "version": {"id": "1"}},  # no issue
    ],
)
def test_a_signed_webhook_about_something_else_is_answered_and_ignored(
    app, client, demo, desk, jira, broker, event
):
    raised_request(demo, desk)
    broker.clear()
    body = json.dumps(event).encode()
    answer = client.post(
        "/webhooks/jira", data=body, headers=signed(body, app.config["JIRA_WEBHOOK_SECRET"])
    )
    assert answer.status_code == 200
    assert answer.json["queued"] is False
    assert queued_checks(broker) == []


def test_with_the_broker_down_jira_is_asked_to_send_it_again(app, demo, desk, jira):
    request = raised_request(demo, desk)
    settings = {k: app.config[k] for k in ("SQLALCHEMY_DATABASE_URI", "JIRA_URL", "TESTING")}
    broker_down = create_app({**settings, "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"})
    body = json.dumps({"issue": {"key": request.jira_key}}).encode()
    headers = signed(body, broker_down.config["JIRA_WEBHOOK_SECRET"])
    answer = broker_down.test_client().post("/webhooks/jira", data=body, headers=headers)
    assert answer.status_code == 503  # Jira retries a 5xx; the next poll finds it anyway
    assert "try again later" in answer.json["error"]
    app.extensions["celery"].set_current()


def test_with_a_real_jira_the_webhook_is_off_until_a_secret_of_ones_own_is_set(app, client):
    body = b'{"issue": {"key": "PAY-1"}}'
    app.config["JIRA_URL"] = "https://clinic-desk.atlassian.net"
    published = signed(body, app.config["JIRA_WEBHOOK_SECRET"])  # the stand-in's default
    answer = client.post("/webhooks/jira", data=body, headers=published)
    assert answer.status_code == 404
    assert "set VCPAY_JIRA_WEBHOOK_SECRET" in answer.json["error"]

    app.config["JIRA_WEBHOOK_SECRET"] = "our-own-secret"
    answer = client.post("/webhooks/jira", data=body, headers=signed(body, "our-own-secret"))
    assert (answer.status_code, answer.json["queued"]) == (200, False)  # no such request here
