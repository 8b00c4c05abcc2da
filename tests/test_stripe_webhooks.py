"""The Stripe webhook pipeline: verify the raw body, keep the event once, process it once."""

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from tests.broker import arguments_queued, due_in, next_message, run_as_worker
from tests.stripe_events import event, post_event, signed
from vcpay import create_app
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.webhooks import services
from vcpay.webhooks.handoff import Handoff
from vcpay.webhooks.models import EventState, StripeEvent
from vcpay.webhooks.registry import StripeHandlers, stripe_handlers
from vcpay.webhooks.tasks import (
    process_stripe_event,
    process_stripe_events,
    sweep_stripe_events,
)


@pytest.fixture
def handled(app):
    """A handler for a test event type; it records each event it is given."""
    seen: list[str] = []
    stripe_handlers(app).add(lambda e: seen.append(e.event_id), "test.recorded")
    return seen


@pytest.fixture
def flaky(app):
    """A handler that fails the first ``failures[0]`` times it is called."""
    failures = [1]
    calls: list[str] = []

    def handle(stored):
        calls.append(stored.event_id)
        if len(calls) <= failures[0]:
            raise RuntimeError("the clinic's database is busy")

    stripe_handlers(app).add(handle, "test.flaky")
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


def drop_inbox_connections(app) -> None:
    """What a database restart does to the inbox's pooled connection: the server ends it."""
    engine = app.extensions["stripe_inbox_engine"]
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as pooled:  # back in the pool after this, alive as far as it knows
        raw = pooled.connection.dbapi_connection
        pid = pooled.exec_driver_sql("SELECT pg_backend_pid()").scalar() if postgres else None
    if postgres:
        db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        db.session.commit()
    else:
        raw.close()  # SQLite has no server: the file connection is closed under the pool


def test_an_inbox_connection_the_database_dropped_is_replaced_once(app, client):
    first, second = event("account.updated"), event("account.updated")
    assert post_event(client, first).status_code == 200
    drop_inbox_connections(app)
    assert post_event(client, second).status_code == 200
    assert [row.event_id for row in stored()] == [first["id"], second["id"]]


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


def test_an_unknown_event_type_is_stored_and_ignored_on_arrival(client, monkeypatch):
    handed: list[int] = []
    monkeypatch.setattr(services.handoff, "submit", handed.append)
    body = event("customer.subscription.trial_will_end")
    assert post_event(client, body).status_code == 200
    assert handed == []  # no worker is asked to look at it
    [row] = stored()
    assert (row.state, row.attempts) == (EventState.IGNORED, 0)
    assert row.processed_at == row.received_at and row.next_attempt_at is None
    services.process(row.id)  # a message for it all the same changes nothing
    db.session.refresh(row)
    assert (row.state, row.attempts) == (EventState.IGNORED, 0)
    assert services.overdue_event_ids() == []


def test_an_event_of_the_other_mode_is_stored_and_ignored_on_arrival(client, handled):
    post_event(client, event("test.recorded", livemode=True))  # vcpay runs with a test key
    [row] = stored()
    assert row.state == EventState.IGNORED
    services.process(row.id)
    assert handled == []
    assert db.session.get(StripeEvent, row.id).state == EventState.IGNORED


def test_an_event_stored_before_its_type_lost_its_handler_is_ignored_by_the_worker(
    app, client, handled
):
    post_event(client, event("test.recorded"))
    [row] = stored()
    assert row.state == EventState.RECEIVED
    stripe_handlers(app)._by_type.pop("test.recorded")  # a release that dropped the handler
    services.process(row.id)
    db.session.refresh(row)
    assert (row.state, row.attempts, handled) == (EventState.IGNORED, 1, [])


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


PROCESS = "vcpay.webhooks.process_stripe_event"


def test_the_worker_retries_a_failed_event_after_its_backoff_and_not_after_its_last(
    app, client, flaky, broker
):
    failures, _calls = flaky
    failures[0] = app.config["STRIPE_EVENT_MAX_ATTEMPTS"]
    post_event(client, event("test.flaky"))
    [row] = stored()
    process_stripe_event.delay(row.id)
    assert run_as_worker(app, next_message(broker, PROCESS)) == "RETRY"
    retry = next_message(broker, PROCESS)
    assert 3 < due_in(retry) <= services.backoff(1)
    db.session.execute(
        update(StripeEvent)
        .filter_by(id=row.id)
        .values(attempts=app.config["STRIPE_EVENT_MAX_ATTEMPTS"] - 1)
    )
    db.session.commit()
    assert run_as_worker(app, retry) == "SUCCESS"  # the last attempt failed: no more retries
    assert db.session.get(StripeEvent, row.id).state == EventState.FAILED
    assert arguments_queued(broker, PROCESS) == []


def test_a_batch_retries_each_failing_event_on_its_own(app, client, flaky, handled, broker):
    failures, _calls = flaky
    failures[0] = app.config["STRIPE_EVENT_MAX_ATTEMPTS"]
    post_event(client, event("test.recorded"))
    post_event(client, event("test.flaky"))
    recorded, failing = stored()
    process_stripe_events([recorded.id, failing.id])
    db.session.expire_all()
    assert db.session.get(StripeEvent, recorded.id).state == EventState.PROCESSED
    retry = next_message(broker, PROCESS)
    assert retry.decode()[0] == [failing.id]
    assert 3 < due_in(retry) <= services.backoff(1)
    retry.ack()
    db.session.execute(
        update(StripeEvent)
        .filter_by(id=failing.id)
        .values(attempts=app.config["STRIPE_EVENT_MAX_ATTEMPTS"] - 1)
    )
    db.session.commit()
    process_stripe_events([failing.id])  # its last attempt
    db.session.expire_all()
    assert db.session.get(StripeEvent, failing.id).state == EventState.FAILED
    assert arguments_queued(broker, PROCESS) == []


def test_the_sweeper_with_nothing_overdue_queues_nothing(client, broker):
    post_event(client, event("account.updated", account="acct_unlinked"))
    assert sweep_stripe_events() == 0
    assert arguments_queued(broker, PROCESS) == []


def test_an_admin_lists_events_in_any_state_and_retries_every_failed_one(
    app, client, runner, flaky, broker
):
    failures, _calls = flaky
    failures[0] = 2 * app.config["STRIPE_EVENT_MAX_ATTEMPTS"]  # both events, every attempt
    unknown = event("customer.subscription.trial_will_end")
    post_event(client, unknown)
    bodies = [event("test.flaky"), event("test.flaky")]
    for body in bodies:
        post_event(client, body)
    ignored, *failing = stored()
    services.process(ignored.id)
    for row in failing:
        for _attempt in range(app.config["STRIPE_EVENT_MAX_ATTEMPTS"]):
            with pytest.raises(services.ProcessingFailed):
                services.process(row.id)
    listing = runner.invoke(args=["stripe-events", "list", "--state", "ignored"])
    assert unknown["id"] in listing.output and "last error" not in listing.output
    retried = runner.invoke(args=["stripe-events", "retry", "--all-failed"])
    assert (retried.exit_code, retried.output) == (0, "Queued 2 event(s) for another attempt.\n")
    assert sorted(arguments_queued(broker, PROCESS)) == sorted([row.id] for row in failing)
    db.session.expire_all()
    assert {row.state for row in stored()[1:]} == {EventState.RECEIVED}
    named = runner.invoke(args=["stripe-events", "retry", bodies[0]["id"]])
    assert named.exit_code == 1  # it is not a failed event now
    assert f"{bodies[0]['id']}: not a failed event" in named.output


def test_a_second_handler_for_one_event_type_is_refused():
    handlers = StripeHandlers()
    handlers.add(lambda event: None, "test.once")
    with pytest.raises(ValueError, match=r"^test\.once already has a handler$"):
        handlers.add(lambda event: None, "test.once")


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


def handed_over(sent: list[list[int]], count: int) -> list[list[int]]:
    deadline = time.monotonic() + 10
    while sum(len(batch) for batch in sent) < count:
        assert time.monotonic() < deadline, f"only {sent} of {count} ids were sent"
        time.sleep(0.01)
    return sent


def test_the_handoff_sends_what_gathered_meanwhile_in_batches_of_at_most_500():
    sent: list[list[int]] = []
    busy, release = threading.Event(), threading.Event()

    def send(batch: list[int]) -> None:
        sent.append(batch)
        busy.set()
        release.wait(10)  # a slow broker

    handoff = Handoff(send)
    handoff.submit(0)
    assert busy.wait(5)
    for row_id in range(1, 1201):
        handoff.submit(row_id)
    release.set()
    batches = handed_over(sent, 1201)
    assert [len(batch) for batch in batches] == [1, 500, 500, 200]
    assert [row_id for batch in batches for row_id in batch] == list(range(1201))


def test_two_first_submits_at_once_start_one_sender():
    sent: list[list[int]] = []
    handoff = Handoff(sent.append)
    senders = {t for t in threading.enumerate() if t.name == "stripe-handoff"}
    with handoff.lock:  # both submits get past the quick check and wait here
        submits = [threading.Thread(target=handoff.submit, args=(n,)) for n in (1, 2)]
        for submit in submits:
            submit.start()
        time.sleep(0.2)
    for submit in submits:
        submit.join(5)
    started = {t for t in threading.enumerate() if t.name == "stripe-handoff"} - senders
    assert len(started) == 1
    assert sorted(row_id for batch in handed_over(sent, 2) for row_id in batch) == [1, 2]


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
