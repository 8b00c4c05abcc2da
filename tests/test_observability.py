"""What an operator sees, in one process: request ids, /readyz's verdicts on the background
machinery, /metrics behind its token, and JSON log records with their ids.

Real processes (gunicorn's and Celery's JSON logs, metrics after a paid request) are in
tests/test_observability_processes.py; Redis and the broker cut for real, in
tests/test_redis_outage.py.
"""

import io
import json
import logging
import re
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.payment_steps import ask, clinician_fixture, gp_fixture, join, start_call  # noqa: F401
from tests.stripe_events import event, post_event
from vcpay import create_app
from vcpay.config import load_settings
from vcpay.database import utcnow
from vcpay.enablement.poll_health import record_poll_outcome
from vcpay.extensions import db
from vcpay.health.models import Heartbeat
from vcpay.health.services import record_heartbeat
from vcpay.integrations.servicedesk import ServiceDeskUnavailable
from vcpay.observability import context
from vcpay.observability.logs import VcpayJsonFormatter
from vcpay.payments.models import PaymentRequest
from vcpay.webhooks.models import EventState, StripeEvent

TOKEN = "metrics-token-for-the-test-0123456789abcdef"


@pytest.fixture
def app_overrides() -> dict:
    return {
        "CELERY_BROKER_URL": "memory://",
        "RATELIMIT_STORAGE_URI": "memory://",
        "METRICS_TOKEN": TOKEN,
        "READY_HEARTBEAT_SECONDS": 120,
        "READY_JIRA_POLL_SECONDS": 300,
        "READY_WEBHOOK_SECONDS": 300,
    }


# --- request ids -------------------------------------------------------------------------


def test_a_well_formed_request_id_is_kept_and_echoed(client):
    response = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a9c21-0001"})
    assert response.headers["X-Request-ID"] == "lb-7f3a9c21-0001"


@pytest.mark.parametrize(
    "sent",
    [None, "short", "has space in it", "pat@example.org-000000", "x" * 65, 'quote"and-0000'],
)
def test_otherwise_each_request_gets_a_new_one(client, sent):
    headers = {"X-Request-ID": sent} if sent is not None else {}
    echoed = client.get("/sign-in", headers=headers).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", echoed)
    assert echoed != client.get("/sign-in", headers=headers).headers["X-Request-ID"]


# --- /healthz and /readyz ----------------------------------------------------------------


def _fresh_background() -> None:
    record_heartbeat()
    record_poll_outcome(None)
    db.session.commit()


def _ready(client) -> tuple[int, dict]:
    response = client.get("/readyz")
    return response.status_code, response.get_json()


def test_ready_when_beat_the_poll_and_the_inbox_are_on_time(client):
    _fresh_background()
    status, body = _ready(client)
    assert status == 200, body
    assert body["ready"] is True and body["late"] == []
    assert body["heartbeat"]["state"] == body["jira_poll"]["state"] == "ok"
    assert body["heartbeat"]["age_seconds"] < 5
    assert body["webhooks"] == {"oldest_pending_seconds": None, "limit_seconds": 300, "state": "ok"}


def test_a_late_heartbeat_makes_it_unready_and_liveness_stays(client):
    _fresh_background()
    heartbeat = db.session.get(Heartbeat, "workers")
    heartbeat.beat_at = utcnow() - timedelta(seconds=121)
    db.session.commit()
    status, body = _ready(client)
    assert status == 503
    assert body["late"] == ["heartbeat"] and body["heartbeat"]["age_seconds"] >= 121
    assert client.get("/healthz").status_code == 200


def test_no_heartbeat_yet_is_late_only_once_the_app_has_been_up_longer_than_the_limit(app):
    record_poll_outcome(None)
    assert _ready(app.test_client())[0] == 200  # just started: beat has time to come
    app.extensions["started_at"] = utcnow() - timedelta(seconds=121)
    status, body = _ready(app.test_client())
    assert status == 503 and body["late"] == ["heartbeat"]
    assert body["heartbeat"]["age_seconds"] is None


def test_a_stale_jira_poll_makes_it_unready(client):
    _fresh_background()
    record_poll_outcome(None)
    from vcpay.enablement.models import JiraPollCursor

    cursor = db.session.get(JiraPollCursor, "enablement_requests")
    cursor.attempted_at = utcnow() - timedelta(seconds=301)
    db.session.commit()
    status, body = _ready(client)
    assert status == 503 and body["late"] == ["jira_poll"]


def test_a_failing_poll_that_still_runs_is_reported_not_unready(client):
    """Jira away must not take every web instance out of the load balancer: the poll keeps
    running (its age stays low) and its failures show here, in the log and in /metrics."""
    _fresh_background()
    record_poll_outcome(ServiceDeskUnavailable("Jira answered 503 at https://jira.example"))
    record_poll_outcome(ServiceDeskUnavailable("Jira answered 503 at https://jira.example"))
    status, body = _ready(client)
    assert status == 200
    assert body["jira_poll"]["failures_in_a_row"] == 2
    assert body["jira_poll"]["last_error"] == "ServiceDeskUnavailable"  # the kind, no address
    record_poll_outcome(None)
    assert _ready(client)[1]["jira_poll"]["failures_in_a_row"] == 0


def _stored_event(received_ago: timedelta, state: EventState) -> StripeEvent:
    now = utcnow()
    row = StripeEvent(
        event_id=f"evt_waiting_{int(received_ago.total_seconds())}_{state.value}",
        type="account.updated",
        account="acct_test_clinic",
        livemode=False,
        created=now - received_ago,
        payload="{}",
        received_at=now - received_ago,
        state=state.value,
        attempts=0,
    )
    db.session.add(row)
    db.session.commit()
    return row


def test_a_stripe_event_waiting_too_long_makes_it_unready(client):
    _fresh_background()
    _stored_event(timedelta(seconds=600), EventState.PROCESSED)  # old, but done
    _stored_event(timedelta(seconds=60), EventState.RECEIVED)
    assert _ready(client)[0] == 200
    _stored_event(timedelta(seconds=301), EventState.RECEIVED)
    status, body = _ready(client)
    assert status == 503 and body["late"] == ["webhooks"]
    assert body["webhooks"]["oldest_pending_seconds"] >= 301


# --- /metrics ----------------------------------------------------------------------------


def _scrape(client, token: str | None = TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get("/metrics", headers=headers)


def _samples(response) -> dict[tuple[str, tuple], float]:
    text = response.get_data(as_text=True)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_need_the_token(client):
    assert _scrape(client, None).status_code == 401
    assert _scrape(client, "wrong-token").status_code == 401
    refused = client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "vcpay_" not in refused.get_data(as_text=True)


def test_without_a_token_setting_there_are_no_metrics(app):
    app.config["METRICS_TOKEN"] = ""
    assert _scrape(app.test_client()).status_code == 404


def test_metrics_after_a_payment_request_and_a_webhook(app, clinician, gp):
    call = start_call(clinician, gp)
    join(app, call)
    assert ask(clinician, call).status_code == 303
    state = db.session.query(PaymentRequest).one().state
    _fresh_background()
    posted = post_event(app.test_client(), event("account.updated"))
    assert posted.status_code == 200, posted.get_data(as_text=True)

    scraped = _scrape(app.test_client())
    assert scraped.status_code == 200
    assert scraped.headers["Content-Type"].startswith("text/plain")
    samples = _samples(scraped)
    assert samples[("vcpay_database_up", ())] == 1
    assert samples[("vcpay_webhook_events_received_total", ())] == 1
    # This test's broker is memory://: no worker takes it, so it waits.
    assert samples[("vcpay_webhook_events_pending", ())] == 1
    assert samples[("vcpay_webhook_events_failed", ())] == 0
    assert 0 <= samples[("vcpay_webhook_oldest_pending_seconds", ())] < 30
    assert samples[("vcpay_webhook_processing_lag_seconds", (("stat", "max"),))] == 0
    assert samples[("vcpay_payment_requests", (("state", str(state)),))] == 1
    assert samples[("vcpay_jira_poll_errors_total", ())] == 0
    assert samples[("vcpay_jira_poll_consecutive_failures", ())] == 0
    assert 0 <= samples[("vcpay_jira_poll_age_seconds", ())] < 30
    assert 0 <= samples[("vcpay_beat_heartbeat_age_seconds", ())] < 30
    assert ("vcpay_open_streams", ()) in samples
    # Latency by url rule: the call's page is one series whatever the call's id.
    routes = {
        dict(labels)["route"]
        for (name, labels) in samples
        if name == "vcpay_request_duration_seconds_count"
    }
    assert "/calls/<int:call_id>" in routes and "/webhooks/stripe" in routes
    assert not any(
        str(call.id) in route or "/join/" + call.guest_token in route for route in routes
    )


def test_a_scrape_without_the_database_says_so_and_still_answers(tmp_path):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'missing' / 'vcpay.sqlite'}",
            "CELERY_BROKER_URL": "memory://",
            "METRICS_TOKEN": TOKEN,
        }
    )
    scraped = _scrape(app.test_client())
    assert scraped.status_code == 200
    assert _samples(scraped)[("vcpay_database_up", ())] == 0
    assert app.test_client().get("/readyz").status_code == 503
    app.extensions["call_waker"].stop()


# --- log records -------------------------------------------------------------------------


def _json_line(logger_name: str, message: str, *args) -> dict:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    from vcpay.observability.logs import dress

    dress(handler, "json")
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
    return json.loads(stream.getvalue())


def test_a_json_record_carries_the_ids_that_apply_and_no_others():
    context.clear()
    context.bind(request_id="lb-7f3a9c21-0001", stripe_event_id="evt_1AbC", call_id=42)
    record = _json_line("vcpay.test", "Stripe event %s failed", 7)
    context.clear()
    assert record["message"] == "Stripe event 7 failed"
    assert (record["level"], record["logger"]) == ("WARNING", "vcpay.test")
    assert record["request_id"] == "lb-7f3a9c21-0001"
    assert (record["stripe_event_id"], record["call_id"]) == ("evt_1AbC", "42")
    assert "payment_request_key" not in record and "jira_key" not in record
    assert isinstance(VcpayJsonFormatter(), logging.Formatter)


def test_an_id_of_the_wrong_shape_is_left_out():
    context.clear()
    context.bind(jira_key="pat@example.org", call_id="12; DROP", payment_request_key="k" * 41)
    assert context.current() == {}
    with context.about(jira_key="PAY-12"):
        assert context.current() == {"jira_key": "PAY-12"}
    assert context.current() == {}


# --- settings ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VCPAY_LOG_FORMAT", "xml"),
        ("VCPAY_METRICS_TOKEN", "too-short-to-be-safe"),
        ("VCPAY_READY_HEARTBEAT_SECONDS", "0"),
    ],
)
def test_a_bad_observability_setting_stops_the_start_naming_itself(tmp_path, variable, value):
    with pytest.raises(ValueError, match=variable):
        load_settings(str(tmp_path), {variable: value})


def test_json_is_chosen_by_the_setting(tmp_path):
    settings = load_settings(str(tmp_path), {"VCPAY_LOG_FORMAT": "JSON"})
    assert settings["LOG_FORMAT"] == "json"
    assert load_settings(str(tmp_path), {})["LOG_FORMAT"] == "text"
