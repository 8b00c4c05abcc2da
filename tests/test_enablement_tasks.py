"""The enablement tasks as a worker runs them: what each retries, and when.

Each task is taken from the in-memory broker and run as a worker runs it (see tests/broker.py);
a retry is a new message, due when the task asked, which the test runs next without waiting.
"""

import logging
from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.broker import arguments_queued, due_in, next_message, run_as_worker
from tests.processes import wait_for
from tests.sandbox.conftest import start_jira_standin, stop_jira_standin
from tests.test_enablement_jira import (
    IMPATIENT_SECONDS,
    LATE_SECONDS,
    queued_request,
    raised_request,
    use_standin,
)
from vcpay.database import utcnow
from vcpay.enablement import polling
from vcpay.enablement.models import EnablementRequest, RequestState
from vcpay.enablement.services import withdraw
from vcpay.enablement.tasks import (
    backoff,
    poll_service_desk,
    post_decision_comment,
    raise_enablement_request,
    sweep_service_desk,
)
from vcpay.extensions import db
from vcpay.integrations.servicedesk import ServiceDesk, forget_clients

RAISE = "vcpay.enablement.raise_request"
COMMENT = "vcpay.enablement.post_decision_comment"
RAISING = {"method": "POST", "path": "/rest/servicedeskapi/request"}


@pytest.fixture(scope="module")
def standin():
    base_url, server = start_jira_standin()
    yield base_url
    stop_jira_standin(server)


@pytest.fixture
def jira(app, standin):
    yield use_standin(app, standin)
    forget_clients()


def current(request: EnablementRequest) -> EnablementRequest:
    db.session.expire_all()  # see what the task committed
    return db.session.get(EnablementRequest, request.id)


def test_jiras_retry_after_decides_when_the_raise_is_tried_again(app, demo, jira, broker):
    jira.fault(**RAISING, status=429, retry_after=7, times=1)
    request = queued_request(demo)  # endorsed: its raise is queued once committed
    assert run_as_worker(app, next_message(broker, RAISE)) == "RETRY"
    retry = next_message(broker, RAISE)
    assert retry.headers["retries"] == 1
    assert 5 < due_in(retry) <= 7
    assert (current(request).state, jira.requests()) == (RequestState.QUEUED, [])
    assert "429" in current(request).last_error  # committed: the request's page shows it
    assert run_as_worker(app, retry) == "SUCCESS"
    assert current(request).state == RequestState.RAISED
    assert len(jira.requests()) == 1


def test_without_retry_after_the_raise_backs_off_doubling(app, demo, jira, broker):
    jira.fault(**RAISING, status=503, times=2)
    request = queued_request(demo)
    assert run_as_worker(app, next_message(broker, RAISE)) == "RETRY"
    first_retry = next_message(broker, RAISE)
    assert 3 < due_in(first_retry) <= 5
    assert run_as_worker(app, first_retry) == "RETRY"
    second_retry = next_message(broker, RAISE)
    assert second_retry.headers["retries"] == 2
    assert 8 < due_in(second_retry) <= 10
    assert run_as_worker(app, second_retry) == "SUCCESS"
    request = current(request)
    assert (request.state, request.raise_attempts, request.last_error) == (
        RequestState.RAISED,
        3,
        None,
    )
    failures = [e for e in request.events if e.kind == "raise_failed"]
    assert len(failures) == 1  # the same failure twice is told once
    assert len(jira.requests()) == 1


def test_while_jiras_search_lags_the_retry_waits_for_it_instead_of_raising_again(
    app,
    demo,
    jira,
    broker,
):
    app.config["JIRA_SEARCH_SETTLE_SECONDS"] = 60
    jira.post("search-lag", {"seconds": 600})
    # Jira creates the request, but its answer comes after vcpay stopped waiting.
    app.config["JIRA_TIMEOUT_SECONDS"] = IMPATIENT_SECONDS
    jira.fault(**RAISING, delay=LATE_SECONDS, after_effect=True, times=1)
    request = queued_request(demo)
    assert run_as_worker(app, next_message(broker, RAISE)) == "RETRY"
    assert current(request).raise_outcome_unknown
    [created] = jira.requests()
    attempts = current(request).raise_attempts

    assert run_as_worker(app, next_message(broker, RAISE)) == "RETRY"  # search can't see it yet
    waiting = next_message(broker, RAISE)
    assert 50 < due_in(waiting) <= 60  # the rest of the settle time, not the backoff
    assert current(request).raise_attempts == attempts  # waiting is not a failed attempt
    assert len(jira.requests()) == 1

    jira.post("search-lag", {"seconds": 0})
    assert run_as_worker(app, waiting) == "SUCCESS"
    assert (current(request).state, current(request).jira_key) == (
        RequestState.RAISED,
        created["key"],
    )
    assert len(jira.requests()) == 1


def test_a_raise_jira_never_received_is_raised_once_search_has_settled(app, demo, jira, broker):
    # vcpay stops waiting before Jira does anything, and Jira then refuses it.
    app.config["JIRA_TIMEOUT_SECONDS"] = IMPATIENT_SECONDS
    jira.fault(**RAISING, delay=LATE_SECONDS, status=503, times=1)
    request = queued_request(demo)
    assert run_as_worker(app, next_message(broker, RAISE)) == "RETRY"
    assert current(request).raise_outcome_unknown and jira.requests() == []
    assert run_as_worker(app, next_message(broker, RAISE)) == "SUCCESS"  # searched first
    assert current(request).state == RequestState.RAISED
    assert len(jira.requests()) == 1
    # Jira answers the abandoned call late; let it, so the next test's log starts empty.
    wait_for(lambda: any(c["status"] == 503 for c in jira.calls()), 10, "Jira's late answer")


def test_a_raise_for_a_request_withdrawn_or_gone_does_nothing(app, demo, jira, broker):
    request = queued_request(demo)
    withdraw(request, request.requester)
    db.session.commit()
    assert run_as_worker(app, next_message(broker, RAISE)) == "SUCCESS"
    raise_enablement_request.delay(request.id + 1000)
    assert run_as_worker(app, next_message(broker, RAISE)) == "SUCCESS"
    assert current(request).state == RequestState.WITHDRAWN
    assert jira.requests() == []
    assert [c for c in jira.calls() if c["method"] == "POST"] == []


def test_the_decision_comment_is_retried_while_jira_fails_and_posted_once(
    app,
    demo,
    jira,
    broker,
):
    request = raised_request(demo, ServiceDesk.from_config(app.config))
    jira.decide(request.jira_key, "approve")
    jira.fault(method="POST", path=f"/rest/api/2/issue/{request.jira_key}/comment", status=503)
    broker.clear()
    polling.poll(ServiceDesk.from_config(app.config))  # approves; queues the comment
    assert run_as_worker(app, next_message(broker, COMMENT)) == "RETRY"
    retry = next_message(broker, COMMENT)
    assert 3 < due_in(retry) <= 5
    assert current(request).comment_posted_at is None
    jira.clear_faults()
    assert run_as_worker(app, retry) == "SUCCESS"
    assert current(request).comment_posted_at is not None
    [raised] = jira.requests()
    assert [c for c in raised["comments"] if request.correlation_id in c["body"]]
    post_decision_comment.delay(request.id + 1000)  # a request since gone
    assert run_as_worker(app, next_message(broker, COMMENT)) == "SUCCESS"


def test_a_poll_while_jira_is_down_is_skipped_and_the_next_applies_the_decision(
    app,
    demo,
    jira,
    caplog,
):
    request = raised_request(demo, ServiceDesk.from_config(app.config))
    jira.decide(request.jira_key, "approve")
    jira.fault(path="/rest/api", status=503)
    with caplog.at_level(logging.INFO):
        poll_service_desk()
        assert current(request).state == RequestState.RAISED
        assert "Jira poll skipped" in caplog.text
        jira.clear_faults()
        poll_service_desk()
        assert current(request).state == RequestState.APPROVED
        assert f"Jira poll applied changes to {request.jira_key}" in caplog.text
        caplog.clear()
        poll_service_desk()  # nothing new: nothing said
        assert "applied changes" not in caplog.text


def test_the_sweep_requeues_a_raise_whose_message_was_lost(app, demo, jira, broker, caplog):
    stalled = queued_request(demo)
    queued_request(demo)  # endorsed just now: its raise may still be on its way
    raised_request(demo, ServiceDesk.from_config(app.config))  # open in Jira: swept
    long_ago = utcnow() - timedelta(hours=1)
    db.session.execute(
        update(EnablementRequest)
        .filter_by(id=stalled.id)
        .values(endorsed_at=long_ago, updated_at=long_ago)
    )
    db.session.commit()
    broker.clear()  # the raises queued on endorsement: lost with the broker
    jira.fault(path="/rest/api", status=503)  # the sweep's own search fails
    with caplog.at_level(logging.WARNING):
        sweep_service_desk()
    assert "Jira sweep skipped" in caplog.text
    assert arguments_queued(broker, RAISE) == [[stalled.id]]


def test_a_retry_after_of_zero_still_waits_a_second():
    assert backoff(3, 0) == 1.0
    assert backoff(3) == 40.0
