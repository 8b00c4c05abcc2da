"""Email: queued with the change it reports, delivered over real SMTP once, retried."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from celery.exceptions import Retry
from sqlalchemy import func, select

from sandbox.mail import start_mail_catcher
from vcpay.claims import CLAIM_TIMEOUT
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.mail.models import EmailState, OutboundEmail
from vcpay.mail.services import pending_email_ids, queue_email, queue_to_each
from vcpay.mail.tasks import send_email
from vcpay.transactions import after_commit


@pytest.fixture
def catcher(app):
    with start_mail_catcher() as running:
        app.config.update(SMTP_HOST=running.host, SMTP_PORT=running.smtp_port)
        yield running


SENT_BACK = {
    "request": SimpleNamespace(organisation=SimpleNamespace(name="Harbourside Health")),
    "manager": SimpleNamespace(name="Morgan Lee"),
    "reason": "A reason",
    "link": "http://127.0.0.1:5000/enablement/requests/1",
}


def deliver(email_id: int) -> None:
    """One attempt, as a worker makes it: its own application context and session.

    A retry comes out as Celery's ``Retry``; the worker would schedule it.
    """
    try:
        send_email(email_id)
    finally:
        db.session.expire_all()


def queued(key="test:1", recipient="patient@example.org") -> OutboundEmail:
    email = queue_email(key, recipient, "Your receipt", "sent_back", **SENT_BACK)
    db.session.commit()
    return email


def test_an_email_is_delivered_over_smtp_and_marked_sent(catcher):
    email = queued()
    deliver(email.id)
    [message] = catcher.store.messages()
    assert message.subject == "Your receipt"
    assert list(message.envelope_recipients) == ["patient@example.org"]
    assert "A reason" in message.text
    email = db.session.get(OutboundEmail, email.id)
    assert email.state == EmailState.SENT
    assert email.sent_at is not None


def test_a_second_delivery_of_the_same_email_sends_nothing(catcher):
    email = queued()
    deliver(email.id)
    deliver(email.id)
    assert len(catcher.store.messages()) == 1


def test_a_temporary_refusal_is_recorded_and_retried(catcher):
    email = queued()
    catcher.store.fail_next(1)
    with pytest.raises(Retry):
        deliver(email.id)
    email = db.session.get(OutboundEmail, email.id)
    assert email.state == EmailState.PENDING
    assert email.attempts == 1
    assert email.last_error == "SMTP 451"
    deliver(email.id)
    assert db.session.get(OutboundEmail, email.id).state == EmailState.SENT
    assert len(catcher.store.messages()) == 1


def test_an_unreachable_mail_server_leaves_the_email_pending(app):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=1, SMTP_TIMEOUT_SECONDS=1)
    email = queued()
    with pytest.raises(Retry):
        deliver(email.id)
    email = db.session.get(OutboundEmail, email.id)
    assert email.state == EmailState.PENDING
    assert "unreachable" in email.last_error


def test_the_same_change_queues_each_email_once(app):
    queue_to_each("decision:7", ["A@x.org", "a@x.org", "b@x.org"], "S", "sent_back", **SENT_BACK)
    queue_to_each("decision:7", ["a@x.org"], "S", "sent_back", **SENT_BACK)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(OutboundEmail)) == 2


def test_side_effects_wait_for_the_commit_and_vanish_on_rollback(app):
    ran = []
    after_commit(db.session(), lambda: ran.append("rolled back"))
    db.session.rollback()
    after_commit(db.session(), lambda: ran.append("committed"))
    assert ran == []
    db.session.commit()
    assert ran == ["committed"]


def test_an_email_is_written_in_the_language_its_recipient_chose(app, demo):
    from flask_babel import lazy_gettext

    from vcpay.people.services import find_user_by_email

    manager = find_user_by_email("manager@harbourside.example")
    manager.locale = "sr_Latn"
    db.session.commit()
    subject = lazy_gettext("Your Payment Gateway request for %(organisation)s was sent back",
                           organisation="Harbourside Health")  # fmt: skip
    emails = queue_to_each("test:language", [manager.email, "else@example.org"], subject,
                           "sent_back", **SENT_BACK)  # fmt: skip
    db.session.commit()
    serbian, english = sorted(emails, key=lambda e: e.recipient != manager.email)
    assert (
        serbian.subject
        == "Vaš zahtev za Platežni prolaz za organizaciju Harbourside Health je vraćen"
    )
    assert serbian.body_text.startswith("Poštovani,")
    assert "Možete da ga izmenite i ponovo pošaljete: http://127.0.0.1:5000/" in serbian.body_text
    assert english.subject == "Your Payment Gateway request for Harbourside Health was sent back"
    assert english.body_text.startswith("Hello,")


def test_an_email_a_worker_is_sending_is_not_sent_again_until_its_claim_is_stale(app, catcher):
    email = queued()
    email.created_at = utcnow() - timedelta(hours=1)  # long enough to be swept
    email.claimed_at = utcnow()  # a worker is sending it now
    db.session.commit()
    deliver(email.id)
    assert catcher.store.messages() == []
    assert email.id not in pending_email_ids()
    # That worker died: once the claim is stale the sweep queues it and it is sent, once.
    email.claimed_at = utcnow() - CLAIM_TIMEOUT - timedelta(minutes=1)
    db.session.commit()
    assert pending_email_ids() == [email.id]
    deliver(email.id)
    deliver(email.id)
    assert len(catcher.store.messages()) == 1
    assert db.session.get(OutboundEmail, email.id).state == EmailState.SENT
    assert pending_email_ids() == []


def test_a_failed_attempt_frees_the_email_for_its_retry(catcher):
    email = queued()
    catcher.store.fail_next(1)
    with pytest.raises(Retry):
        deliver(email.id)
    assert db.session.get(OutboundEmail, email.id).claimed_at is None
    deliver(email.id)
    assert len(catcher.store.messages()) == 1
