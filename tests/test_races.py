"""Exactly once when two of anything run at once, on SQLite as on PostgreSQL.

Each test lets two or more rivals loose together from a ``threading.Barrier``, each on a
thread of its own with its own application context and database session, as two worker
processes or two web servers would be (two web servers are two vcpay apps, each with its own
connection pools, served over HTTP), and repeats that for several rounds so the window is
hit. SQLite ignores ``SELECT ... FOR UPDATE``: anything that rested on a row lock alone did
its work twice there. ``pytest -m races`` runs this file alone.
"""

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from typing import Any

import pytest
import requests
import stripe
from sqlalchemy import func, select

from sandbox.mail import start_mail_catcher
from tests.conftest import csrf_token, sign_in
from tests.sandbox.conftest import start_jira_standin, stop_jira_standin
from tests.stripe_events import signed
from tests.stripe_standin import WEBHOOK_SECRET, link_clinic, served
from tests.test_enablement_jira import (
    queued_request,
    raised_request,
    use_standin,
    vcpay_comments,
)
from vcpay import create_app
from vcpay.audit.models import AuditEntry
from vcpay.calls.models import CallEvent
from vcpay.calls.services import join_as_patient, start_call
from vcpay.client_payments.models import LinkState, RemovalCause, StripeLink
from vcpay.enablement.models import EnablementRequest, RequestEvent, RequestState
from vcpay.extensions import db, limiter
from vcpay.integrations.servicedesk import ServiceDesk, forget_clients
from vcpay.integrations.stripe_api import StripeApi
from vcpay.mail.models import EmailState, OutboundEmail
from vcpay.mail.services import queue_email
from vcpay.payments import requesting, transitions
from vcpay.payments.models import PaymentRefund, PaymentRequest, PaymentState
from vcpay.people.demo import seed_demo
from vcpay.people.services import find_user_by_email
from vcpay.webhooks.models import EventState, StripeEvent
from vcpay.webhooks.services import process

pytestmark = pytest.mark.races

# Enough rounds to hit each window many times over on a loaded two-core machine.
ROUNDS = 12
# One rival sets off this much later now and then, so each can be first.
DELAYS = (0, 0, 0.01, 0.02, 0.04)
CLINICIAN = "clinician@harbourside.example"
ADMIN = "clinicadmin@harbourside.example"


def at_once(app, *rivals: Callable[[], Any]) -> list[Any]:
    """Run the rivals together, each on its own thread, application context and database
    session; their results in order. The first one that raised is raised here."""
    barrier = threading.Barrier(len(rivals), timeout=30)
    outcomes: list[tuple[bool, Any]] = [(False, None)] * len(rivals)

    def run(index: int, rival: Callable[[], Any]) -> None:
        with app.app_context():
            try:
                barrier.wait()
                outcomes[index] = (True, rival())
            except BaseException as error:  # noqa: BLE001 - handed to the test below
                outcomes[index] = (False, error)

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(rivals)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a rival never finished"
    db.session.rollback()  # the test's own session sees what the rivals committed
    for finished, result in outcomes:
        if not finished:
            raise result
    return [result for _, result in outcomes]


def task(app, name: str):
    """The app's own task by name, called as a worker calls it (in an app context)."""
    return app.extensions["celery"].tasks[name]


# -- The service desk: raising, decisions, comments ------------------------------------------


@pytest.fixture(scope="module")
def jira_standin():
    base_url, server = start_jira_standin()
    yield base_url
    stop_jira_standin(server)


@pytest.fixture
def jira(app, jira_standin):
    yield use_standin(app, jira_standin)
    forget_clients()


@pytest.fixture
def desk(app, jira):
    return ServiceDesk.from_config(app.config)


@pytest.fixture
def broker(app):
    """The in-memory broker's queue, emptied: what the rivals queue lands here."""
    celery = app.extensions["celery"]
    with celery.connection_for_write() as connection:
        queue = connection.SimpleQueue("celery")
        queue.clear()
        yield queue
        queue.close()


def queued_tasks(queue, name: str) -> list[list]:
    """The arguments of every queued ``name`` task (others are dropped)."""
    found = []
    while queue.qsize():
        message = queue.get(timeout=1)
        if message.headers["task"] == name:
            found.append(message.decode()[0])
        message.ack()
    return found


def drain(queue) -> None:
    queued_tasks(queue, "")


def count(model, **where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).filter_by(**where))


def test_two_workers_raising_one_request_raise_it_once(app, demo, jira):
    raise_request = task(app, "vcpay.enablement.raise_request")
    for _ in range(ROUNDS):
        request = queued_request(demo)
        at_once(app, *[partial(raise_request, request.id)] * 2)
        mine = [r for r in jira.requests() if request.correlation_id in r["summary"]]
        request = db.session.get(EnablementRequest, request.id)
        assert len(mine) == 1, "the request was raised in Jira twice"
        assert (request.state, request.jira_key) == (RequestState.RAISED, mine[0]["key"])
        assert count(RequestEvent, request_id=request.id, kind="raised") == 1


def test_two_workers_commenting_on_one_decision_post_one_comment(app, demo, desk, jira):
    comment = task(app, "vcpay.enablement.post_decision_comment")
    for _ in range(ROUNDS):
        request = raised_request(demo, desk)
        request.state = RequestState.APPROVED.value
        db.session.commit()
        at_once(app, *[partial(comment, request.id)] * 2)
        assert len(vcpay_comments(jira, request)) == 1, "vcpay commented twice"
        assert db.session.get(EnablementRequest, request.id).comment_posted_at is not None
        assert count(RequestEvent, request_id=request.id, kind="commented") == 1


def test_two_looks_at_jira_at_once_apply_each_decision_once_and_comment_once(
    app, demo, desk, jira, broker
):
    """Two polls, or a poll and the look Jira's webhook asks for (the race that bit)."""
    poll = task(app, "vcpay.enablement.poll_service_desk")
    check = task(app, "vcpay.enablement.check_service_desk_request")
    comment = task(app, "vcpay.enablement.post_decision_comment")
    for round_number in range(ROUNDS):
        request = raised_request(demo, desk)
        drain(broker)  # the raise's own messages
        jira.decide(request.jira_key, "approve")
        at_once(app, poll, poll if round_number % 2 else partial(check, request.jira_key))
        request = db.session.get(EnablementRequest, request.id)
        assert request.state == RequestState.APPROVED
        assert count(RequestEvent, request_id=request.id, kind="approved") == 1
        assert count(AuditEntry, action="enablement.approved", object_id=str(request.id)) == 1
        approved = select(OutboundEmail.recipient).where(
            OutboundEmail.dedupe_key.like(f"enablement:{request.id}:approved:%")
        )
        recipients = list(db.session.scalars(approved))
        assert recipients and len(recipients) == len(set(recipients))
        comments = queued_tasks(broker, "vcpay.enablement.post_decision_comment")
        assert comments == [[request.id]], "the decision was applied more than once"
        # Each comment task queued runs twice at once, as a redelivery would run it.
        at_once(app, *[partial(comment, *args) for args in comments * 2])
        assert len(vcpay_comments(jira, request)) == 1


def withdraw(browser, request_id: int, token: str, delay: float = 0) -> str:
    time.sleep(delay)
    response = browser.post(
        f"/enablement/requests/{request_id}/withdraw", data={"csrf_token": token}
    )
    assert response.status_code == 302, response.status_code
    return browser.get(response.location).get_data(as_text=True)


def request_page_token(browser, request_id: int) -> str:
    return csrf_token(browser, f"/enablement/requests/{request_id}")


def test_a_withdrawal_and_jiras_approval_at_once_end_one_way_or_the_other(
    app, demo, desk, jira, broker
):
    poll = task(app, "vcpay.enablement.poll_service_desk")
    manager = app.test_client()
    sign_in(manager, "manager@harbourside.example")
    outcomes = Counter()
    for _ in range(ROUNDS):
        for clinic in demo.clinics:  # off again, so each approval has something to enable
            clinic.gateway_enabled_at = clinic.gateway_enabled_by_request_id = None
        request = raised_request(demo, desk)
        jira.decide(request.jira_key, "approve")
        token = request_page_token(manager, request.id)
        page, _ = at_once(app, partial(withdraw, manager, request.id, token), poll)
        request = db.session.get(EnablementRequest, request.id)
        enabled = [c for c in demo.clinics if c.gateway_enabled_by_request_id == request.id]
        happened = Counter(e.kind for e in request.events)
        if request.state == RequestState.WITHDRAWN:
            assert not enabled and not happened["approved"], "withdrawn, yet clinics enabled"
            assert "Request withdrawn." in page
        else:
            assert request.state == RequestState.APPROVED
            assert enabled and not happened["withdrawn"], "approved, yet withdrawn"
            assert "Only an open request can be withdrawn." in page
        outcomes[request.state] += 1
        drain(broker)
    print(f"withdrawal racing an approval: {dict(outcomes)}")


def test_a_withdrawal_while_the_request_is_raised_leaves_it_withdrawn_and_tells_jira(
    app, demo, jira, broker
):
    raise_request = task(app, "vcpay.enablement.raise_request")
    comment = task(app, "vcpay.enablement.post_decision_comment")
    manager = app.test_client()
    sign_in(manager, "manager@harbourside.example")
    outcomes = Counter()
    for round_number in range(ROUNDS):
        request = queued_request(demo)
        drain(broker)
        token = request_page_token(manager, request.id)
        delay = DELAYS[round_number % len(DELAYS)]  # before, during and after the raise
        at_once(
            app,
            partial(withdraw, manager, request.id, token, delay),
            partial(raise_request, request.id),
        )
        request = db.session.get(EnablementRequest, request.id)
        assert request.state == RequestState.WITHDRAWN, "a withdrawn request came back"
        mine = [r for r in jira.requests() if request.correlation_id in r["summary"]]
        assert [r["key"] for r in mine] == ([request.jira_key] if request.jira_key else [])
        for args in queued_tasks(broker, "vcpay.enablement.post_decision_comment"):
            comment(*args)
        if mine:  # raised after all: Jira is told it was withdrawn, once
            assert [c for c in vcpay_comments(jira, request) if "withdrew" in c] != []
            assert len(vcpay_comments(jira, request)) == 1
        kinds_in_order = [e.kind for e in request.events if e.kind in ("raised", "withdrawn")]
        outcomes[" then ".join(kinds_in_order)] += 1
    print(f"withdrawal racing a raise: {dict(outcomes)}")


# -- Email -------------------------------------------------------------------------------------


@pytest.fixture
def catcher(app):
    with start_mail_catcher() as running:
        app.config.update(SMTP_HOST=running.host, SMTP_PORT=running.smtp_port)
        yield running


def test_two_workers_sending_one_email_send_it_once(app, catcher):
    send = task(app, "vcpay.mail.send_email")
    for number in range(ROUNDS):
        recipient = f"patient{number}@example.org"
        email = queue_email(
            f"race:{number}", recipient, "Your receipt", "sent_back",
            request={"organisation": {"name": "Harbourside Health"}},
            manager={"name": "Morgan Lee"}, reason="A reason", link="http://127.0.0.1/",
        )  # fmt: skip
        db.session.commit()
        at_once(app, *[partial(send, email.id)] * 2)
        assert len(catcher.store.messages(to=recipient)) == 1, "the email was sent twice"
        email = db.session.get(OutboundEmail, email.id)
        assert (email.state, email.attempts) == (EmailState.SENT, 1)


# -- Payments ----------------------------------------------------------------------------------


@pytest.fixture
def gp(app, stripe_control):
    """The GP clinic: gateway on, its Stripe account linked with charges enabled."""
    organisation = seed_demo(enable_gateway=True)
    clinic = next(c for c in organisation.clinics if c.name == "Harbourside GP Clinic")
    link_clinic(stripe_control, clinic)
    db.session.commit()
    return clinic


@pytest.fixture
def call(gp):
    made = start_call(gp, find_user_by_email(CLINICIAN), "Pat Citizen, 10:30")
    join_as_patient(made, "Pat Citizen")
    db.session.commit()
    return made


def requested(call, amount: str = "85.00") -> PaymentRequest:
    asked = requesting.PaymentAsked(
        amount, "Consultation", secrets.token_urlsafe(18), requesting.ANYONE
    )
    made = requesting.request_payment(
        call, find_user_by_email(CLINICIAN), asked, StripeApi.for_app()
    )
    db.session.commit()
    return made.request


def events_of(control, object_id: str, event_type: str) -> list[dict]:
    """Events the stand-in made about one object, oldest first."""
    return [
        e
        for e in reversed(control.call("GET", "events"))
        if e["type"] == event_type and e["data"]["object"]["id"] == object_id
    ]


def kinds(request: PaymentRequest) -> Counter:
    query = select(CallEvent.kind, CallEvent.data).filter_by(call_id=request.call_id)
    return Counter(kind for kind, data in db.session.execute(query) if data.get("request") ==
                   request.request_key)  # fmt: skip


def receipts(request: PaymentRequest) -> int:
    return count(OutboundEmail, dedupe_key=f"receipt:{request.id}")


@pytest.fixture
def second_app(app, stripe_control):
    """Another vcpay on the same database, as a second web server or worker process is."""
    other = create_app({**app.config, "TESTING": True})
    yield other
    with other.app_context():
        db.session.remove()
        db.engine.dispose()
        if (inbox := other.extensions.get("stripe_inbox_engine")) is not None:
            inbox.dispose()
    other.extensions["call_waker"].stop()


def deliver(url: str, payload: bytes, header: str) -> int:
    response = requests.post(
        f"{url}/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.status_code


def in_context(app, action: Callable[[], Any]) -> Any:
    with app.app_context():
        return action()


def test_one_event_delivered_to_two_web_servers_and_two_workers_is_applied_once(
    app, second_app, call, stripe_control
):
    with ExitStack() as stack:
        urls = [stack.enter_context(served(a)) for a in (app, second_app)]
        for _ in range(ROUNDS):
            request = requested(call)
            stripe_control.pay(request.checkout_session_id)
            [event] = events_of(stripe_control, request.checkout_session_id,
                                "checkout.session.completed")  # fmt: skip
            payload, header = signed(event, WEBHOOK_SECRET)
            at_once(app, *[partial(deliver, url, payload, header) for url in urls])
            [stored] = db.session.scalars(select(StripeEvent).filter_by(event_id=event["id"]))
            at_once(
                app,
                partial(process, stored.id),
                partial(in_context, second_app, partial(process, stored.id)),
            )
            stored = db.session.get(StripeEvent, stored.id)
            assert (stored.state, stored.attempts) == (EventState.PROCESSED, 1)
            request = db.session.get(PaymentRequest, request.id)
            assert request.state == PaymentState.PAID
            assert kinds(request)["payment_paid"] == 1, "the payment popped up twice"
            assert receipts(request) == 1


def done_page(call, request: PaymentRequest) -> str:
    return (
        f"/join/{call.guest_token}/payments/{request.request_key}/done"
        f"?session_id={request.checkout_session_id}"
    )


def test_the_patients_page_and_the_worker_confirm_a_payment_once(app, call, webhooks):
    patient = app.test_client()
    for _ in range(ROUNDS):
        request = requested(call)
        webhooks.pay(request.checkout_session_id)
        webhooks.wait_for_webhooks()
        [stored] = db.session.scalars(
            select(StripeEvent).filter_by(
                type="checkout.session.completed", state=EventState.RECEIVED.value
            )
        )
        at_once(app, partial(process, stored.id), partial(patient.get, done_page(call, request)))
        request = db.session.get(PaymentRequest, request.id)
        assert request.state == PaymentState.PAID
        assert kinds(request)["payment_paid"] == 1, "the payment popped up twice"
        assert receipts(request) == 1


def clinician_browser(app, call):
    browser = app.test_client()
    sign_in(browser, CLINICIAN)
    return browser


def request_form(browser, call) -> dict[str, str]:
    page = browser.get(f"/calls/{call.id}").get_data(as_text=True)
    key = page.split('name="request_key" type="hidden" value="')[1].split('"')[0]
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    return {"csrf_token": token, "request_key": key}


def post_request(browser, call, form: dict[str, str]):
    data = {"amount": "85.00", "description": "Consultation", "payer": "anyone", **form}
    return browser.post(
        f"/calls/{call.id}/payment-requests", data=data, headers={"Accept": "application/json"}
    )


def test_two_request_payment_posts_with_one_key_make_one_request_and_one_session(
    app, call, stripe_control
):
    first, second = clinician_browser(app, call), clinician_browser(app, call)
    for round_number in range(ROUNDS * 2):  # the window is a Stripe call's length
        limiter.reset()
        # Each round its own visit: the same one still open would ask the clinician first.
        form = {**request_form(first, call), "description": f"Visit {round_number}"}
        # The same form sent twice at once (a double click), each with its own sign-in.
        other = {**form, "csrf_token": request_form(second, call)["csrf_token"]}
        answers = at_once(
            app,
            partial(post_request, first, call, form),
            partial(post_request, second, call, other),
        )
        key = form["request_key"]
        assert [a.status_code for a in answers] == [201, 201], [a.get_json() for a in answers]
        assert sorted(a.get_json()["repeated"] for a in answers) == [False, True]
        assert count(PaymentRequest, request_key=key) == 1
        sessions = [s for s in stripe_control.sessions() if s["client_reference_id"] == key]
        assert len(sessions) == 1, "two Checkout Sessions for one request"


def pay_then_return(control, patient, call, request: PaymentRequest, delay: float) -> bool:
    """The patient pays on Checkout after ``delay`` and comes back to the confirmation page;
    whether Stripe took the payment (not when the session was expired first)."""
    time.sleep(delay)
    answer = control.answer(
        "POST",
        f"checkout/sessions/{request.checkout_session_id}/pay",
        json={"card": "4242424242424242", "email": "pat@example.org"},
    )
    patient.get(done_page(call, request))
    return answer.status_code < 300


def cancel(clinician, call, request: PaymentRequest, token: str):
    return clinician.post(
        f"/calls/{call.id}/payment-requests/{request.request_key}/cancel",
        data={"csrf_token": token},
    )


def test_cancelling_while_the_patient_pays_leaves_it_paid_or_cancelled_never_both(
    app, call, stripe_control
):
    clinician, patient = clinician_browser(app, call), app.test_client()
    outcomes = Counter()
    for round_number in range(ROUNDS * 2):
        limiter.reset()
        request = requested(call)
        token = csrf_token(clinician, f"/calls/{call.id}")
        # Paying a little later now and then lets the cancel reach Stripe first too.
        delay = DELAYS[round_number % len(DELAYS)]
        paid, _answer = at_once(
            app,
            partial(pay_then_return, stripe_control, patient, call, request, delay),
            partial(cancel, clinician, call, request, token),
        )
        request = db.session.get(PaymentRequest, request.id)
        seen = kinds(request)
        if paid:  # paid wins
            assert request.state == PaymentState.PAID, "a payment was lost to a cancel"
            assert (seen["payment_paid"], seen["payment_cancelled"]) == (1, 0), seen
            assert receipts(request) == 1
        else:
            assert request.state == PaymentState.CANCELLED
            assert (seen["payment_paid"], seen["payment_cancelled"]) == (0, 1), seen
        outcomes[request.state] += 1
    print(f"cancel racing a payment: {dict(outcomes)}")


def test_two_refund_events_at_once_record_the_refund_once(app, call, webhooks):
    platform = stripe.StripeClient(
        app.config["STRIPE_SECRET_KEY"],
        base_addresses={"api": webhooks.base, "connect": webhooks.base},
    )
    for _ in range(ROUNDS):
        request = requested(call, "100.00")
        webhooks.pay(request.checkout_session_id)
        webhooks.wait_for_webhooks()
        transitions.sync_with_stripe(request, StripeApi.for_app())
        db.session.commit()
        options = {"stripe_account": request.stripe_account_id}
        for amount in (4000, 6000):
            platform.v1.refunds.create(
                {"payment_intent": request.payment_intent_id, "amount": amount}, options
            )
        webhooks.wait_for_webhooks()
        refunds = db.session.scalars(
            select(StripeEvent.id).filter_by(
                type="charge.refunded", state=EventState.RECEIVED.value
            )
        ).all()
        assert len(refunds) == 2
        at_once(app, *[partial(process, row_id) for row_id in refunds])
        request = db.session.get(PaymentRequest, request.id)
        assert (request.state, request.amount_refunded) == (PaymentState.REFUNDED, 10000)
        assert kinds(request)["payment_refunded"] == 1, "one refund was announced twice"
        states = db.session.scalars(select(StripeEvent.state).where(StripeEvent.id.in_(refunds)))
        assert set(states) == {EventState.PROCESSED}
        assert count(PaymentRefund, payment_request_id=request.id) == 2, "a refund recorded twice"


def admin_browser(app):
    browser = app.test_client()
    sign_in(browser, ADMIN)
    return browser


def refund_form(browser, request: PaymentRequest) -> dict[str, str]:
    page = browser.get(f"/payments/{request.id}/refund").get_data(as_text=True)
    key = page.split('name="refund_key" type="hidden" value="')[1].split('"')[0]
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    return {"csrf_token": token, "refund_key": key}


def post_refund(browser, request: PaymentRequest, form: dict[str, str]):
    data = {"extent": "part", "amount": "25.00", "reason": "Charged twice", **form}
    return browser.post(f"/payments/{request.id}/refund", data=data)


def test_two_refund_posts_with_one_key_make_one_refund(app, call, webhooks):
    first, second = admin_browser(app), admin_browser(app)
    platform = stripe.StripeClient(
        app.config["STRIPE_SECRET_KEY"],
        base_addresses={"api": webhooks.base, "connect": webhooks.base},
    )
    for _ in range(ROUNDS):
        limiter.reset()
        request = requested(call, "100.00")
        webhooks.pay(request.checkout_session_id)
        transitions.sync_with_stripe(request, StripeApi.for_app())
        db.session.commit()
        form = refund_form(first, request)
        # The same form sent twice at once (a double click), each with its own sign-in.
        other = {**form, "csrf_token": refund_form(second, request)["csrf_token"]}
        answers = at_once(
            app,
            partial(post_refund, first, request, form),
            partial(post_refund, second, request, other),
        )
        assert [a.status_code for a in answers] == [303, 303]
        assert count(PaymentRefund, refund_key=form["refund_key"]) == 1
        options = {"stripe_account": request.stripe_account_id}
        made = platform.v1.refunds.list({"payment_intent": request.payment_intent_id}, options)
        assert len(made.data) == 1, "two Stripe refunds for one form"
        request = db.session.get(PaymentRequest, request.id)
        assert request.amount_refunded == 2500


# -- Linking a clinic's Stripe account -----------------------------------------------------------


def browser_like(app, browser):
    """Another connection from the same browser: the same cookies."""
    twin = app.test_client()
    session = browser.get_cookie(app.config["SESSION_COOKIE_NAME"])
    twin.set_cookie(session.key, session.value, domain=session.domain)
    return twin


def come_back(browser, answer: dict[str, str]) -> str:
    response = browser.get("/client-payments/stripe/callback", query_string=answer)
    assert response.status_code == 303
    return browser.get(response.location).get_data(as_text=True)


def test_stripes_answer_arriving_twice_at_once_links_the_account_once(app, stripe_control):
    organisation = seed_demo(enable_gateway=True)
    db.session.commit()
    clinic = next(c for c in organisation.clinics if c.name == "Harbourside GP Clinic")
    admin = app.test_client()
    sign_in(admin, ADMIN)
    for linked in range(1, ROUNDS + 1):
        account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
        token = csrf_token(admin, f"/client-payments/clinics/{clinic.id}")
        started = admin.post(
            f"/client-payments/clinics/{clinic.id}/stripe/connect", data={"csrf_token": token}
        )
        answer = stripe_control.consent(started.location, account=account)
        pages = at_once(
            app,
            partial(come_back, admin, answer),
            partial(come_back, browser_like(app, admin), answer),
        )
        assert sum("Linked Stripe account" in page for page in pages) == 1
        assert sum("This answer from Stripe was already used" in page for page in pages) == 1
        [link] = db.session.scalars(select(StripeLink).filter_by(state=LinkState.LINKED.value))
        assert link.account_id == account
        assert count(AuditEntry, action="stripe.linked", object_id=str(clinic.id)) == linked
        link.state = LinkState.REMOVED.value  # ready for the next round
        db.session.commit()


def remove(browser, clinic, token: str) -> int:
    return browser.post(
        f"/client-payments/clinics/{clinic.id}/stripe/remove", data={"csrf_token": token}
    ).status_code


def test_remove_and_stripes_disconnection_at_once_remove_the_link_once(app, webhooks):
    organisation = seed_demo(enable_gateway=True)
    db.session.commit()
    clinic = next(c for c in organisation.clinics if c.name == "Harbourside GP Clinic")
    admin = app.test_client()
    sign_in(admin, ADMIN)
    for removed in range(1, ROUNDS + 1):
        link = link_clinic(webhooks, clinic)
        db.session.commit()
        webhooks.disconnect(link.account_id)  # in the clinic's own Stripe dashboard
        webhooks.wait_for_webhooks()
        [event] = db.session.scalars(
            select(StripeEvent.id).filter_by(
                type="account.application.deauthorized", state=EventState.RECEIVED.value
            )
        )
        # The admin has the Remove page open before either rival starts: once the
        # disconnection wins, that page would no longer offer the form.
        token = csrf_token(admin, f"/client-payments/clinics/{clinic.id}/stripe/remove")
        [answer, _] = at_once(app, partial(remove, admin, clinic, token), partial(process, event))
        assert answer == 303  # back to Client Payments, whichever rival won
        link = db.session.get(StripeLink, link.id)
        assert link.state == LinkState.REMOVED
        assert count(AuditEntry, action="stripe.removed", object_id=str(clinic.id)) == removed
        told = count(OutboundEmail, dedupe_key=f"stripe-disconnected:{link.id}:{ADMIN}")
        assert told == (link.removal_cause == RemovalCause.IN_STRIPE)
