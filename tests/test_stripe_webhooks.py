"""The Stripe webhook pipeline: verify the raw body, keep the event once, process it once."""

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.stripe_events import event, post_event, signed
from vcpay import create_app
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.webhooks import services
from vcpay.webhooks.handlers import HANDLERS
from vcpay.webhooks.models import EventState, StripeEvent
from vcpay.webhooks.tasks import (
    process_stripe_event,
    process_stripe_events,
    sweep_stripe_events,
)


@pytest.fixture
def handled(monkeypatch):
    """A handler for a test event type; it records each event it is given."""
    seen: list[str] = []
    monkeypatch.setitem(HANDLERS, "test.recorded", lambda e: seen.append(e.event_id))
    return seen


@pytest.fixture
def flaky(monkeypatch):
    """A handler that fails the first ``failures[0]`` times it is called."""
    failures = [1]
    calls: list[str] = []

    def handle(stored):
        calls.append(stored.event_id)
        if len(calls) <= failures[0]:
            raise RuntimeError("the clinic's database is busy")

    monkeypatch.setitem(HANDLERS, "test.flaky", handle)
    return failures, calls


def stored() -> list[StripeEvent]:
    return list(db.session.scalars(select(StripeEvent).order_by(StripeEvent.id)))


def test_a_signed_event_is_stored_and_answered_2xx_before_processing(client, handled):
    body = event("test.recorded")
    response = post_event(client, body)
    assert response.status_code == 200
    assert response.json == {"received": body["id"], "duplicate": False}
    [row] = stored()
    assert (row.event_id, row.type, row.account) == (body["id"], "test.recorded", body["account"])
    assert row.state == EventState.RECEIVED
    assert handled == []  # a worker does that
    services.process(row.id)
    assert handled == [body["id"]]
    db.session.refresh(row)
    assert (row.state, row.attempts) == (EventState.PROCESSED, 1)
    assert row.processed_at is not None


def test_the_body_is_kept_byte_for_byte(client, handled):
    body = event("test.recorded", {"id": "acct_1", "note": "Ŝpecial ☃"})
    payload, _ = signed(body)
    post_event(client, body)
    [row] = stored()
    assert row.payload.encode() == payload


def test_a_duplicate_delivery_answers_2xx_and_is_processed_once(client, handled):
    body = event("test.recorded")
    first, second = post_event(client, body), post_event(client, body)
    assert first.status_code == second.status_code == 200
    assert second.json["duplicate"] is True
    [row] = stored()
    services.process(row.id)
    services.process(row.id)  # a second message for the same event
    assert handled == [body["id"]]
    assert db.session.get(StripeEvent, row.id).attempts == 1


@pytest.mark.parametrize(
    "signing, reason",
    [
        ({"secret": "whsec_someone_else"}, "No signatures found"),
        ({"timestamp": int(time.time()) - 301}, "Timestamp outside the tolerance zone"),
    ],
    ids=["wrong secret", "older than five minutes"],
)
def test_a_bad_or_old_signature_is_refused_and_nothing_is_stored(client, signing, reason):
    response = post_event(client, event("account.updated"), **signing)
    assert response.status_code == 400
    assert reason in response.json["error"]
    assert stored() == []


def test_a_missing_signature_is_refused(client):
    payload, _ = signed(event("account.updated"))
    response = client.post("/webhooks/stripe", data=payload)
    assert response.status_code == 400
    assert "Stripe-Signature header is missing" in response.json["error"]
    assert stored() == []


def test_a_re_serialised_body_fails_the_signature(client):
    body = event("account.updated")
    _, header = signed(body)
    compact = (
        b'{"id":"' + body["id"].encode() + b'","type":"account.updated","created":1}'
    )  # the same event, written differently
    response = client.post("/webhooks/stripe", data=compact, headers={"Stripe-Signature": header})
    assert response.status_code == 400
    assert stored() == []


@pytest.mark.parametrize(
    "body",
    [
        {"object": "event", "type": "account.updated"},
        {"id": "not-an-event", "type": "x", "created": 1},
    ],
    ids=["no id", "not an event id"],
)
def test_a_signed_body_that_is_not_an_event_is_refused(client, body):
    response = post_event(client, body)
    assert response.status_code == 400
    assert stored() == []


def test_an_unknown_event_type_is_stored_and_ignored(client):
    body = event("customer.subscription.trial_will_end")
    assert post_event(client, body).status_code == 200
    [row] = stored()
    services.process(row.id)
    db.session.refresh(row)
    assert (row.state, row.attempts) == (EventState.IGNORED, 1)


def test_an_event_of_the_other_mode_is_stored_and_ignored(client, handled):
    post_event(client, event("test.recorded", livemode=True))  # vcpay runs with a test key
    [row] = stored()
    services.process(row.id)
    assert handled == []
    assert db.session.get(StripeEvent, row.id).state == EventState.IGNORED


def test_a_failing_handler_is_recorded_and_retried_with_backoff(client, flaky):
    _failures, calls = flaky
    post_event(client, event("test.flaky"))
    [row] = stored()
    with pytest.raises(services.ProcessingFailed) as failed:
        services.process(row.id)
    assert failed.value.retry_in == services.backoff(1) == 5.0
    db.session.refresh(row)
    assert (row.state, row.attempts) == (EventState.RECEIVED, 1)
    assert "RuntimeError: the clinic's database is busy" in row.last_error
    assert row.next_attempt_at > utcnow() + timedelta(seconds=3)
    services.process(row.id)
    db.session.refresh(row)
    assert (row.state, row.attempts, row.last_error) == (EventState.PROCESSED, 2, None)
    assert len(calls) == 2


def test_the_celery_task_retries_a_failed_event_until_it_is_processed(client, flaky):
    failures, _calls = flaky
    failures[0] = 2
    post_event(client, event("test.flaky"))
    [row] = stored()
    process_stripe_event.apply(args=[row.id])  # eager: retries run at once
    db.session.refresh(row)
    assert (row.state, row.attempts) == (EventState.PROCESSED, 3)


def test_an_event_that_keeps_failing_is_marked_failed_and_an_admin_can_retry_it(
    app, client, runner, flaky
):
    failures, _calls = flaky
    failures[0] = app.config["STRIPE_EVENT_MAX_ATTEMPTS"]
    body = event("test.flaky")
    post_event(client, body)
    [row] = stored()
    for _attempt in range(app.config["STRIPE_EVENT_MAX_ATTEMPTS"]):
        with pytest.raises(services.ProcessingFailed) as failed:
            services.process(row.id)
    assert failed.value.retry_in is None  # no attempts left
    db.session.refresh(row)
    assert row.state == EventState.FAILED

    listing = runner.invoke(args=["stripe-events", "list"])
    assert body["id"] in listing.output and "the clinic's database is busy" in listing.output

    refused = runner.invoke(args=["stripe-events", "retry"])
    assert refused.exit_code != 0 and "--all-failed" in refused.output
    retried = runner.invoke(args=["stripe-events", "retry", body["id"], "evt_unknown"])
    assert "Queued 1 event(s)" in retried.output
    assert "evt_unknown: not a failed event" in retried.output
    db.session.refresh(row)
    assert (row.state, row.attempts) == (EventState.RECEIVED, 0)
    services.process(row.id)  # the handler works now
    assert db.session.get(StripeEvent, row.id).state == EventState.PROCESSED
    assert "No failed Stripe events" in runner.invoke(args=["stripe-events", "list"]).output


def test_with_the_broker_down_the_event_is_kept_and_the_sweeper_enqueues_it_later(app):
    settings = {k: app.config[k] for k in ("TESTING", "SQLALCHEMY_DATABASE_URI")}
    broker_down = create_app({**settings, "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"})
    body = event("account.updated", account="acct_unlinked")
    response = post_event(broker_down.test_client(), body)
    assert response.status_code == 200  # Stripe must not retry: the event is safe
    [row] = stored()
    assert row.state == EventState.RECEIVED

    celery = app.extensions["celery"]
    celery.set_current()  # the broker is back
    assert services.overdue_event_ids() == []  # not overdue yet: its message may be queued
    overdue = utcnow() - timedelta(seconds=app.config["STRIPE_EVENT_SWEEP_SECONDS"] + 1)
    db.session.execute(update(StripeEvent).values(next_attempt_at=overdue))
    db.session.commit()
    with celery.connection_for_write() as connection:
        queue = connection.SimpleQueue("celery")
        queue.clear()  # what earlier tests enqueued in this process
        assert sweep_stripe_events() == 1
        message = queue.get(timeout=2)
        assert message.headers["task"] == "vcpay.webhooks.process_stripe_event"
        assert message.headers["argsrepr"] == f"({row.id},)"
        message.ack()
        queue.close()
    assert services.overdue_event_ids() == []  # due again only after another interval
    services.process(row.id)
    assert db.session.get(StripeEvent, row.id).state == EventState.PROCESSED


def test_stored_events_reach_the_broker_in_batches_off_the_request_thread(app, client):
    celery = app.extensions["celery"]
    celery.set_current()
    with celery.connection_for_write() as connection:
        queue = connection.SimpleQueue("celery")
        queue.clear()
        for _ in range(3):
            assert post_event(client, event("account.updated")).status_code == 200
        ids = {row.id for row in stored()}
        handed = set()
        deadline = time.monotonic() + 5
        while handed != ids and time.monotonic() < deadline:
            message = queue.get(timeout=5)
            assert message.headers["task"] == "vcpay.webhooks.process_stripe_events"
            handed.update(message.decode()[0][0])
            message.ack()
        queue.close()
    assert handed == ids
    process_stripe_events(sorted(ids))  # what the worker runs
    assert {row.state for row in stored()} == {EventState.PROCESSED}


def test_against_real_stripe_the_published_secret_is_refused_until_one_of_ones_own_is_set(
    app, client, handled
):
    # Real Stripe with the stand-in's published signing secret: anyone could sign with it.
    app.config["STRIPE_API_BASE"] = "https://api.stripe.com"
    body = event("test.recorded")
    refused = post_event(client, body)
    assert refused.status_code == 404
    assert "set VCPAY_STRIPE_WEBHOOK_SECRET" in refused.json["error"]
    assert stored() == []
    app.config["STRIPE_WEBHOOK_SECRET"] = "whsec_of_our_own_endpoint"
    assert post_event(client, body).status_code == 400  # the published secret signs no more
    assert post_event(client, body, secret="whsec_of_our_own_endpoint").status_code == 200
    assert [row.event_id for row in stored()] == [body["id"]]
