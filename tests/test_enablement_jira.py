"""Raising requests in Jira and reading decisions back, over real HTTP to the stand-in."""

import importlib.util
from datetime import timedelta
from pathlib import Path

import pytest
from celery.exceptions import Retry
from markupsafe import escape
from sqlalchemy import func, select, update

from sandbox.jira.control_client import JiraControl
from tests.sandbox.conftest import AGENT, jira_client, start_jira_standin, stop_jira_standin
from vcpay.claims import CLAIM_TIMEOUT
from vcpay.database import utcnow
from vcpay.enablement import polling
from vcpay.enablement.models import EnablementRequest, JiraPollCursor, RequestState
from vcpay.enablement.raising import (
    WaitForSearch,
    description_of,
    raise_in_service_desk,
    summary_of,
)
from vcpay.enablement.services import ClinicChoice, save_draft, submit
from vcpay.enablement.tasks import backoff
from vcpay.extensions import db
from vcpay.integrations.servicedesk import (
    ServiceDesk,
    ServiceDeskRefused,
    ServiceDeskUnavailable,
    forget_clients,
)
from vcpay.mail.models import OutboundEmail
from vcpay.people.services import find_user_by_email


@pytest.fixture(scope="module")
def standin():
    base_url, server = start_jira_standin()
    yield base_url
    stop_jira_standin(server)


# How long vcpay waits for the stand-in: generous, since a loaded two-core machine can take a
# while to answer even an in-process server. Tests in which Jira answers after vcpay stopped
# waiting make vcpay impatient instead, and Jira later still.
PATIENT_SECONDS = 10.0
IMPATIENT_SECONDS, LATE_SECONDS = 3.0, 4.5


def use_standin(app, base: str) -> JiraControl:
    """The stand-in at ``base``, reset and without faults, is the app's Jira."""
    control = JiraControl(base)
    control.reset()
    control.clear_faults()
    app.config.update(
        JIRA_URL=base, JIRA_TIMEOUT_SECONDS=PATIENT_SECONDS, JIRA_SEARCH_SETTLE_SECONDS=0
    )
    forget_clients()
    return control


@pytest.fixture
def jira(app, standin):
    yield use_standin(app, standin)
    forget_clients()


@pytest.fixture
def desk(app, jira):
    return ServiceDesk.from_config(app.config)


def queued_request(demo, clinics=None) -> EnablementRequest:
    manager = find_user_by_email("manager@harbourside.example")
    request = EnablementRequest(
        organisation=demo, requester=manager, state=RequestState.DRAFT.value
    )
    choices = [
        ClinicChoice(c.id, True, f"accounts+{c.id}@harbourside.example")
        for c in (clinics or demo.clinics)
    ]
    contact = {"name": manager.name, "email": manager.email, "phone": "02 5550 0100"}
    save_draft(request, choices, contact, True, "Please enable before Monday.")
    submit(request, manager)
    db.session.commit()
    return request


def raised_request(demo, desk, clinics=None) -> EnablementRequest:
    request = queued_request(demo, clinics)
    raise_in_service_desk(request, desk)
    db.session.commit()
    return request


def test_a_queued_request_is_raised_on_behalf_of_the_manager(demo, desk, jira):
    request = raised_request(demo, desk)
    assert request.state == RequestState.RAISED
    [raised] = jira.requests()
    assert raised["key"] == request.jira_key
    assert request.correlation_id in raised["summary"]
    for clinic in demo.clinics:
        assert f"{clinic.name} (vcpay clinic {clinic.id})" in raised["description"]
    assert "manager@harbourside.example" in str(raised)


def test_approval_enables_every_clinic_comments_and_emails_once(demo, desk, jira):
    request = raised_request(demo, desk)
    jira.decide(request.jira_key, "approve")
    report = polling.poll(desk)
    assert report.changed == [request.jira_key]
    request = db.session.get(EnablementRequest, request.id)
    assert request.state == RequestState.APPROVED
    for clinic in demo.clinics:
        assert clinic.gateway_enabled
        assert clinic.gateway_enabled_by_request_id == request.id
    polling.post_comment_once(request, desk)
    db.session.commit()
    # Replays: another poll, a sweep and a second comment attempt change nothing.
    assert polling.poll(desk).changed == []
    assert polling.sweep(desk).changed == []
    request.comment_posted_at = None  # as if the worker crashed before recording it
    polling.post_comment_once(request, desk)
    db.session.commit()
    [raised] = jira.requests()
    vcpay_comments = [c for c in raised["comments"] if request.correlation_id in c["body"]]
    assert len(vcpay_comments) == 1
    assert "Harbourside GP Clinic" in vcpay_comments[0]["body"]
    recipients = set(
        db.session.scalars(
            select(OutboundEmail.recipient).where(OutboundEmail.dedupe_key.like("%approved%"))
        )
    )
    assert {"manager@harbourside.example", "clinicadmin@harbourside.example"} <= recipients
    assert db.session.scalar(
        select(func.count())
        .select_from(OutboundEmail)
        .where(OutboundEmail.dedupe_key.like("%approved%"))
    ) == len(recipients)


def test_a_decline_records_the_reason_and_enables_nothing(demo, desk, jira):
    request = raised_request(demo, desk)
    jira.decide(request.jira_key, "decline", comment="No Stripe account found for this clinic.")
    polling.poll(desk)
    request = db.session.get(EnablementRequest, request.id)
    assert request.state == RequestState.DECLINED
    assert "No Stripe account found" in request.decision_reason
    assert "Declined" in request.decision_reason
    assert not any(c.gateway_enabled for c in demo.clinics)
    told = db.session.scalars(
        select(OutboundEmail).where(OutboundEmail.dedupe_key.like("%declined%"))
    ).all()
    assert told
    for email in told:  # the service desk's comment in vcpay's sentence, not Jira's terms
        body = email.body_text
        assert "Declined in the service desk: No Stripe account found for this clinic." in body
        assert "Resolution:" not in body


def test_a_manual_move_while_the_approval_is_pending_needs_review(demo, desk, jira):
    request = raised_request(demo, desk)
    jira.move(request.jira_key, "Resolved")
    polling.poll(desk)
    request = db.session.get(EnablementRequest, request.id)
    assert request.state == RequestState.NEEDS_REVIEW
    assert "still pending" in request.review_reason
    assert not any(c.gateway_enabled for c in demo.clinics)
    [email, *_] = db.session.scalars(
        select(OutboundEmail).where(OutboundEmail.dedupe_key.like("%needs_review%"))
    ).all()
    assert f"The service desk moved {request.jira_key} on while its approval" in email.body_text
    # The approval that follows is applied.
    jira.decide(request.jira_key, "approve")
    polling.poll(desk)
    assert db.session.get(EnablementRequest, request.id).state == RequestState.APPROVED


def events_of(request: EnablementRequest, kind: str) -> list:
    db.session.expire_all()
    return [e for e in db.session.get(EnablementRequest, request.id).events if e.kind == kind]


def test_a_comment_while_the_approval_is_pending_changes_nothing(demo, desk, jira, standin):
    request = raised_request(demo, desk)
    jira_client(standin, AGENT).add_comment(request.jira_key, "We are checking the accounts.")
    polling.poll(desk)
    request = db.session.get(EnablementRequest, request.id)
    assert (request.state, request.jira_status) == (RequestState.RAISED, "Waiting for approval")
    assert events_of(request, "status_changed") == []
    assert db.session.scalar(select(func.count()).select_from(OutboundEmail)) == 0


def test_a_request_moved_by_hand_is_flagged_for_review_once(demo, desk, jira, standin):
    request = raised_request(demo, desk)
    jira.move(request.jira_key, "In Progress")
    polling.poll(desk)
    flagged = db.session.scalar(select(func.count()).select_from(OutboundEmail))
    jira_client(standin, AGENT).add_comment(request.jira_key, "Still looking.")
    polling.poll(desk)
    request = db.session.get(EnablementRequest, request.id)
    assert request.state == RequestState.NEEDS_REVIEW
    assert len(events_of(request, "needs_review")) == 1
    assert db.session.scalar(select(func.count()).select_from(OutboundEmail)) == flagged > 0


def test_an_approval_enables_only_the_clinics_not_enabled_meanwhile(demo, desk, jira):
    request = raised_request(demo, desk)
    gp, physio = sorted(demo.clinics, key=lambda c: c.name)
    gp.gateway_enabled_at = utcnow()  # by another way in the meantime
    db.session.commit()
    jira.decide(request.jira_key, "approve")
    polling.poll(desk)
    request = db.session.get(EnablementRequest, request.id)
    assert request.state == RequestState.APPROVED
    assert (gp.gateway_enabled_by_request_id, physio.gateway_enabled_by_request_id) == (
        None,
        request.id,
    )
    polling.post_comment_once(request, desk)
    db.session.commit()
    [comment] = [c for c in jira.requests()[0]["comments"] if request.correlation_id in c["body"]]
    assert "Harbourside Physiotherapy" in comment["body"] and "GP Clinic" not in comment["body"]


def test_a_decision_after_the_manager_stepped_down_still_tells_everyone_else(demo, desk, jira):
    from vcpay.people.models import OrganisationMembership

    request = raised_request(demo, desk)
    db.session.execute(update(OrganisationMembership).values(is_telehealth_manager=False))
    db.session.commit()
    jira.decide(request.jira_key, "approve")
    polling.poll(desk)
    assert db.session.get(EnablementRequest, request.id).state == RequestState.APPROVED
    told = set(db.session.scalars(select(OutboundEmail.recipient)))
    assert told == {
        request.requester.email,
        request.contact_email,
        "clinicadmin@harbourside.example",
    }


def test_a_decline_without_a_comment_records_the_resolution(demo, desk, jira):
    request = raised_request(demo, desk)
    jira.decide(request.jira_key, "decline")
    polling.poll(desk)
    request = db.session.get(EnablementRequest, request.id)
    assert (request.state, request.decision_reason) == (
        RequestState.DECLINED,
        "Resolution: Declined.",
    )


def test_withdrawing_a_raised_request_comments_on_it_once(demo, desk, jira):
    from vcpay.enablement.services import withdraw

    request = raised_request(demo, desk)
    withdraw(request, request.requester)
    db.session.commit()
    polling.post_comment_once(request, desk)
    db.session.commit()
    polling.post_comment_once(request, desk)  # a repeated task: already done
    db.session.commit()
    [raised] = jira.requests()
    [comment] = [c for c in raised["comments"] if request.correlation_id in c["body"]]
    assert comment["body"] == (
        "The organisation withdrew this request in vcpay; nothing will be enabled. "
        f"[{request.correlation_id}:withdrawn]"
    )
    assert len(events_of(request, "commented")) == 1


# A workflow without an approval step: the configured statuses and resolutions decide.


@pytest.fixture(scope="module")
def plain_standin():
    base_url, server = start_jira_standin(approval_step=False)
    yield base_url
    stop_jira_standin(server)


@pytest.fixture
def plain_desk(app, plain_standin):
    use_standin(app, plain_standin)
    yield ServiceDesk.from_config(app.config)
    forget_clients()


RESOLVE = "31"  # the stand-in workflow's "Resolve" transition


@pytest.mark.parametrize(
    "resolution, approved_statuses, decided",
    [
        ("Done", ["Resolved"], RequestState.APPROVED),
        ("Won't Do", ["Resolved"], RequestState.DECLINED),
        ("Done", ["Approved"], RequestState.NEEDS_REVIEW),  # done, but not a status named
        (None, ["Resolved"], RequestState.RAISED),  # only a comment: still waiting
    ],
)
def test_without_an_approval_step_the_configured_names_decide(
    app, demo, plain_desk, plain_standin, resolution, approved_statuses, decided
):
    app.config["JIRA_APPROVED_STATUSES"] = approved_statuses
    request = raised_request(demo, plain_desk)
    assert request.jira_status == "In Progress"
    agent = jira_client(plain_standin, AGENT)
    if resolution is None:
        agent.add_comment(request.jira_key, "Looking into it.")
    else:
        chosen = {"resolution": {"name": resolution}}
        agent.transition_issue(request.jira_key, RESOLVE, fields=chosen)
    polling.poll(plain_desk)
    request = db.session.get(EnablementRequest, request.id)
    assert request.state == decided
    enabled = all(c.gateway_enabled for c in demo.clinics)
    assert enabled is (decided == RequestState.APPROVED)


def test_jira_down_then_back(demo, desk, jira):
    request = queued_request(demo)
    jira.fault(path="/rest/servicedeskapi", status=503, times=None)
    with pytest.raises(ServiceDeskUnavailable):
        raise_in_service_desk(request, desk)
    db.session.commit()
    request = db.session.get(EnablementRequest, request.id)
    assert request.state == RequestState.QUEUED
    assert "503" in request.last_error
    jira.clear_faults()
    assert raise_in_service_desk(request, desk)
    db.session.commit()
    assert request.state == RequestState.RAISED
    assert len(jira.requests()) == 1


def test_a_429_carries_retry_after_into_the_retry_delay(demo, desk, jira):
    request = queued_request(demo)
    jira.fault(method="POST", path="/rest/servicedeskapi/request", status=429, retry_after=7)
    with pytest.raises(ServiceDeskUnavailable) as raised:
        raise_in_service_desk(request, desk)
    assert raised.value.retry_after == 7
    assert backoff(0, raised.value.retry_after) == 7
    assert raised.value.outcome_unknown is False


def impatient_desk(app) -> ServiceDesk:
    """A service desk that stops waiting for Jira before ``LATE_SECONDS``."""
    app.config["JIRA_TIMEOUT_SECONDS"] = IMPATIENT_SECONDS
    return ServiceDesk.from_config(app.config)


def test_a_timeout_after_jira_created_the_request_never_raises_it_twice(app, demo, jira):
    desk = impatient_desk(app)
    request = queued_request(demo)
    jira.fault(
        method="POST", path="/rest/servicedeskapi/request", delay=LATE_SECONDS, after_effect=True
    )
    with pytest.raises(ServiceDeskUnavailable) as timed_out:
        raise_in_service_desk(request, desk)
    assert timed_out.value.outcome_unknown
    db.session.commit()
    assert len(jira.requests()) == 1  # Jira did create it
    assert raise_in_service_desk(request, desk)
    db.session.commit()
    assert len(jira.requests()) == 1
    assert request.jira_key == jira.requests()[0]["key"]


def test_a_lagging_search_makes_the_retry_wait_rather_than_raise_again(app, demo, jira):
    app.config["JIRA_SEARCH_SETTLE_SECONDS"] = 60
    desk = impatient_desk(app)
    jira.post("search-lag", {"seconds": 30})
    request = queued_request(demo)
    jira.fault(
        method="POST", path="/rest/servicedeskapi/request", delay=LATE_SECONDS, after_effect=True
    )
    with pytest.raises(ServiceDeskUnavailable):
        raise_in_service_desk(request, desk)
    db.session.commit()
    with pytest.raises(WaitForSearch):
        raise_in_service_desk(request, desk)
    assert len(jira.requests()) == 1


def test_a_decision_in_the_same_minute_as_the_cursor_is_seen(demo, desk, jira):
    request = raised_request(demo, desk)
    polling.poll(desk)  # the cursor now sits at the raise, this very minute
    cursor = db.session.get(JiraPollCursor, polling.CURSOR)
    assert cursor.updated is not None
    jira.decide(request.jira_key, "approve")
    polling.poll(desk)
    assert db.session.get(EnablementRequest, request.id).state == RequestState.APPROVED


def test_nothing_changed_costs_exactly_one_search(demo, desk, jira):
    raised_request(demo, desk)
    polling.poll(desk)
    jira.clear_calls()
    polling.poll(desk)
    searches = [c for c in jira.calls() if "/search" in c["path"]]
    assert len(searches) == 1
    assert not [c for c in jira.calls() if "/approval" in c["path"]]


def test_the_sweep_finds_a_decision_the_cursor_missed(demo, desk, jira):
    request = raised_request(demo, desk)
    jira.decide(request.jira_key, "approve")
    cursor = polling._cursor()
    cursor.updated = utcnow() + timedelta(days=1)  # as if a poll had skipped past it
    db.session.commit()
    polling.poll(desk)
    assert db.session.get(EnablementRequest, request.id).state == RequestState.RAISED
    polling.sweep(desk)
    assert db.session.get(EnablementRequest, request.id).state == RequestState.APPROVED


def test_a_decision_after_withdrawal_enables_nothing(demo, desk, jira):
    from vcpay.enablement.services import withdraw

    request = raised_request(demo, desk)
    withdraw(request, request.requester)
    db.session.commit()
    jira.decide(request.jira_key, "approve")
    polling.poll(desk)
    polling.sweep(desk)
    assert not any(c.gateway_enabled for c in demo.clinics)
    assert db.session.get(EnablementRequest, request.id).state == RequestState.WITHDRAWN


def test_wrong_credentials_are_refused_with_a_clear_message(app, demo, jira):
    app.config["JIRA_API_TOKEN"] = "wrong"
    forget_clients()
    desk = ServiceDesk.from_config(app.config)
    request = queued_request(demo)
    with pytest.raises(ServiceDeskRefused, match="credentials"):
        raise_in_service_desk(request, desk)


def test_an_unknown_request_type_is_refused_with_a_clear_message(app, demo, jira):
    app.config["JIRA_REQUEST_TYPE"] = "No Such Type"
    forget_clients()
    desk = ServiceDesk.from_config(app.config)
    with pytest.raises(ServiceDeskRefused, match="No Such Type"):
        raise_in_service_desk(queued_request(demo), desk)


def test_a_manager_endorsed_request_shows_its_jira_key_and_status(client, demo, desk, jira):
    from tests.conftest import sign_in

    request = raised_request(demo, desk)
    sign_in(client, "clinicadmin@harbourside.example")
    html = client.get(f"/enablement/requests/{request.id}").get_data(as_text=True)
    assert request.jira_key in html
    assert "Waiting for approval" in html
    assert f"/browse/{request.jira_key}" in html


def run_task(app, name: str, *args) -> None:
    """The task as a worker runs it: its own application context and database session."""
    app.extensions["celery"].tasks[name](*args)
    db.session.expire_all()


def test_a_raise_left_by_a_worker_that_died_is_found_in_jira_not_raised_again(
    app, demo, desk, jira
):
    request = queued_request(demo)
    manager = request.endorsed_by
    account = desk.ensure_customer(manager.email, manager.name)
    desk.raise_request(summary_of(request), description_of(request), account)
    request.raise_claimed_at = utcnow()  # the worker that did that is still running
    db.session.commit()
    run_task(app, "vcpay.enablement.raise_request", request.id)
    assert db.session.get(EnablementRequest, request.id).state == RequestState.QUEUED
    # It died before recording the key: once its claim is stale, a retry finds the request.
    request.raise_claimed_at = utcnow() - CLAIM_TIMEOUT - timedelta(minutes=1)
    db.session.commit()
    run_task(app, "vcpay.enablement.raise_request", request.id)
    [raised] = jira.requests()
    request = db.session.get(EnablementRequest, request.id)
    assert (request.state, request.jira_key) == (RequestState.RAISED, raised["key"])
    assert request.raise_claimed_at is None


def test_a_comment_left_by_a_worker_that_died_is_posted_once_its_claim_is_stale(
    app, demo, desk, jira
):
    request = raised_request(demo, desk)
    jira.decide(request.jira_key, "approve")
    polling.poll(desk)
    request = db.session.get(EnablementRequest, request.id)
    request.comment_claimed_at = utcnow()  # a worker is posting it now
    db.session.commit()
    run_task(app, "vcpay.enablement.post_decision_comment", request.id)
    assert polling.abandoned_comment_ids() == []
    assert vcpay_comments(jira, request) == []
    # It posted, then died before recording it: the retry the sweep queues finds its comment.
    desk.add_public_comment(request.jira_key, polling.comment_body(request))
    request.comment_claimed_at = utcnow() - CLAIM_TIMEOUT - timedelta(minutes=1)
    db.session.commit()
    assert polling.abandoned_comment_ids() == [request.id]
    run_task(app, "vcpay.enablement.post_decision_comment", request.id)
    assert len(vcpay_comments(jira, request)) == 1
    assert db.session.get(EnablementRequest, request.id).comment_posted_at is not None
    assert polling.abandoned_comment_ids() == []


def test_a_comment_that_jira_refused_is_freed_for_its_retry(app, demo, desk, jira):
    request = raised_request(demo, desk)
    jira.decide(request.jira_key, "approve")
    polling.poll(desk)
    jira.fault(
        method="POST", path=f"/rest/api/2/issue/{request.jira_key}/comment", status=503, times=1
    )
    with pytest.raises(Retry):
        run_task(app, "vcpay.enablement.post_decision_comment", request.id)
    assert db.session.get(EnablementRequest, request.id).comment_claimed_at is None
    run_task(app, "vcpay.enablement.post_decision_comment", request.id)
    assert len(vcpay_comments(jira, request)) == 1


def vcpay_comments(jira: JiraControl, request: EnablementRequest) -> list[str]:
    [raised] = [r for r in jira.requests() if r["key"] == request.jira_key]
    return [c["body"] for c in raised["comments"] if request.correlation_id in c["body"]]


def test_a_decided_request_reads_in_the_readers_language_and_vcpays_words(client, demo, desk, jira):
    from flask_babel import force_locale, gettext

    from tests.conftest import sign_in
    from vcpay.enablement.wording import timeline_entry

    request = raised_request(demo, desk)
    jira.decide(request.jira_key, "approve")
    polling.poll(desk)
    request = db.session.get(EnablementRequest, request.id)
    # Stored as codes and parameters, not as anyone's sentences.
    assert [e.message for e in request.events] == [""] * len(request.events)
    assert all(e.params is not None for e in request.events)
    sign_in(client, "clinicadmin@harbourside.example")
    page = client.get(
        f"/enablement/requests/{request.id}", headers={"Accept-Language": "sr-RS,sr;q=0.9"}
    ).get_data(as_text=True)
    with force_locale("sr_Cyrl"):
        entries = [timeline_entry(e) for e in request.events]
        approved = gettext("Approved")
    assert approved != "Approved" and f"{request.jira_key}</a> · {approved}</dd>" in page
    assert f"({request.jira_resolution})" not in page and "(Done)" not in page
    for entry in entries:
        assert str(escape(entry)) in page


def test_timeline_entries_written_before_codes_are_read_back_or_shown_as_written(app):
    from vcpay.enablement.models import RequestEvent
    from vcpay.enablement.wording import timeline_entry

    migration = next(Path("migrations/versions").glob("*_5c1e7a93d2b4_*.py"))
    spec = importlib.util.spec_from_file_location("timeline_codes", migration)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written = {
        ("submitted", "Sent to Morgan Reyes for endorsement."): {"name": "Morgan Reyes"},
        ("endorsed", "Sent by the authorised telehealth manager."): {"code": "sent_directly"},
        ("sent_back", "Sent back by Morgan: Add the: fees."): {
            "name": "Morgan",
            "reason": "Add the: fees.",
        },
        ("status_changed", "Service desk status: Approved."): {"status": "Approved"},
        ("approved", "Approved in the service desk. Enabled: none (already enabled)."): {
            "code": "approved_none"
        },
        (
            "declined",
            "Declined in the service desk. Resolution: Declined. Service desk: No account.",
        ): {"code": "declined_with_comment", "comment": "No account."},
        ("declined", "Declined in the service desk. Resolution: Won't Do."): {},
        (
            "needs_review",
            "The service desk moved HD-1 to 'Resolved' while its approval is still pending. "
            "vcpay has not enabled anything; a person needs to check it.",
        ): {"key": "HD-1"},
        ("commented", "Something vcpay never wrote."): None,
    }
    for (kind, message), params in written.items():
        assert module.read_back(kind, message) == params, message
    with app.test_request_context(headers={"Accept-Language": "en"}):
        legacy = RequestEvent(kind="commented", message="Something vcpay never wrote.")
        assert timeline_entry(legacy) == "Something vcpay never wrote."
        read = RequestEvent(kind="submitted", message="", params={"name": "Morgan Reyes"})
        assert timeline_entry(read) == "Sent to Morgan Reyes for endorsement."


def test_why_a_raise_failed_is_told_in_the_readers_words_not_jiras(client, demo, desk, jira):
    from tests.conftest import sign_in

    request = queued_request(demo)
    jira.fault(path="/rest/servicedeskapi", status=503, times=None)
    with pytest.raises(ServiceDeskUnavailable):
        raise_in_service_desk(request, desk)
    db.session.commit()
    assert "503" in request.last_error  # the log's note of the call
    sign_in(client, "clinicadmin@harbourside.example")
    for path in (
        f"/enablement/requests/{request.id}",
        f"/enablement/organisations/{demo.id}/requests",
    ):
        page = client.get(path).get_data(as_text=True)
        assert "The service desk was busy." in page, path
        assert "Jira failed" not in page and "503" not in page, path
