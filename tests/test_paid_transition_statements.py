"""The worker's part of "payment received": the clinician's popup waits for every statement
of the transaction that records a payment, so their number is held here.

A completed Checkout is applied in: the locked read of the event, the request (with its
clinic), the patients' names, one guarded UPDATE carrying the payment's details, the call
event, the recipient's language and the receipt (one INSERT that skips a replay), and the
event's mark. Reading the call, its participants or the clinic on their own, refreshing the
request after Stripe answered, or setting the details after the move (a second UPDATE at the
next flush) each add a statement before the commit.
"""

from sqlalchemy import event

from tests.payment_steps import (
    ask,
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    join,
    kinds,
    pay_and_process,
    start_call,
    the_request,
)
from tests.stripe_standin import received, wait_for_events
from tests.test_mail_format import SENT_BACK
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail
from vcpay.mail.services import queue_email
from vcpay.payments.models import PaymentState
from vcpay.webhooks import services
from vcpay.webhooks.models import EventState

STATEMENTS_TO_RECORD_A_PAYMENT = 9


def statements_of(work) -> list[str]:
    made: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        made.append(statement.split(None, 1)[0].upper())

    engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return made


def test_a_completed_checkout_is_recorded_in_few_statements(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    join(app, call, "Pat Citizen")
    ask(clinician, call)
    request = the_request()
    pay_and_process(webhooks, request)
    [completed] = wait_for_events("checkout.session.completed")
    row_id = completed.id
    db.session.rollback()

    made = statements_of(lambda: services.process(row_id))

    writes = [s for s in made if s in ("INSERT", "UPDATE", "DELETE")]
    assert len(made) - made.count("COMMIT") <= STATEMENTS_TO_RECORD_A_PAYMENT, made
    # The request moves once, carrying the payment; the event is marked once.
    assert writes.count("UPDATE") == 2, made
    paid = the_request()
    assert paid.state == PaymentState.PAID
    assert (paid.patient_name, paid.card_last4) == ("Pat Citizen", "4242")
    assert paid.patient_email and paid.receipt_number and paid.paid_at is not None
    assert kinds(call).count("payment_paid") == 1
    receipts = db.session.query(OutboundEmail).filter_by(dedupe_key=f"receipt:{paid.id}").all()
    assert len(receipts) == 1 and paid.receipt_number in receipts[0].body_text
    assert [e.state for e in received("checkout.session.completed")] == [EventState.PROCESSED]


def test_an_email_queued_twice_is_one_row(app):
    """The outbox INSERT skips a row already there (a replayed change) in one statement."""
    first = queue_email("test:once", "pat@example.org", "Receipt", "sent_back", **SENT_BACK)
    again = queue_email("test:once", "pat@example.org", "Receipt", "sent_back", **SENT_BACK)
    db.session.commit()
    assert first is not None and again is None
    assert db.session.query(OutboundEmail).filter_by(dedupe_key="test:once").count() == 1
    assert db.session.get(OutboundEmail, first.id).state == "pending"
