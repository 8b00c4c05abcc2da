"""`flask demo-history`: the Stripe stand-in's past payments become the GP clinic's calls,
payment requests, refunds and sent receipts, dated in the past, each once however often it
runs, with amounts that add up to what Stripe holds."""

import json
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from tests.stripe_standin import link_clinic
from vcpay.audit.models import AuditEntry
from vcpay.calls.models import Call, CallEvent
from vcpay.client_payments.models import StripeLink
from vcpay.extensions import db
from vcpay.mail.models import EmailState, OutboundEmail
from vcpay.payments.models import PaymentRefund, PaymentRequest, PaymentState
from vcpay.payouts.models import Payout, PayoutTransaction
from vcpay.people.demo import CLINICS
from vcpay.people.models import Clinic

DAY = 24 * 60 * 60
NOW = int(time.time())


def past(days: float) -> int:
    return int(NOW - days * DAY)


PAST_PAYMENTS = [
    {"key": "hist-a", "amount": 8500, "description": "Standard consultation",
     "email": "jelena@example.org", "name": "Јелена Петровић", "created": past(15)},
    {"key": "hist-b", "amount": 12000, "description": "Long consultation, \"urgent\"",
     "email": "liam@example.org", "name": "Liam O'Brien", "created": past(12), "card": "5555",
     "refunds": [{"amount": 4000, "created": past(11), "reason": "requested_by_customer"}]},
    {"key": "hist-c", "amount": 4500, "description": "Telehealth follow-up",
     "email": "mia@example.org", "name": "Mia Nguyen", "created": past(9),
     "declined_card": "4000000000000002",
     "refunds": [{"amount": 4500, "created": past(8), "reason": "duplicate"}]},
    {"key": "hist-x", "amount": 8500, "description": "Standard consultation",
     "email": "noah@example.org", "name": "Noah Smith", "created": past(10), "outcome": "expired"},
    {"key": "hist-y", "amount": 8500, "description": "Standard consultation",
     "email": "ava@example.org", "name": "Ava Jones", "created": past(5), "outcome": "expired"},
]  # fmt: skip


@pytest.fixture
def history(demo, stripe_control) -> dict:
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    answer = stripe_control.write_history(account, PAST_PAYMENTS)
    answer["payments"]["hist-y"]["ended"] = "cancelled"
    answer["payments"]["hist-a"]["patient_locale"] = "sr_Cyrl"
    return answer


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def request(key: str) -> PaymentRequest:
    return db.session.scalar(select(PaymentRequest).filter_by(request_key=key))


def test_each_past_payment_is_recorded_as_vcpay_would_have(runner, history):
    result = runner.invoke(args=["demo-history"], input=json.dumps(history))
    assert result.exit_code == 0, result.output
    assert "5 past payments written" in result.output

    paid = request("hist-a")
    stripe = history["payments"]["hist-a"]
    assert paid.clinic.name == CLINICS[0]
    assert paid.state == PaymentState.PAID
    assert paid.created_at == datetime.fromtimestamp(stripe["requested_at"], UTC)
    assert paid.paid_at == datetime.fromtimestamp(past(15), UTC)
    assert (paid.patient_name, paid.patient_email) == ("Јелена Петровић", "jelena@example.org")
    assert (paid.charge_id, paid.payment_intent_id) == (
        stripe["charge_id"],
        stripe["payment_intent_id"],
    )
    assert (paid.stripe_fee, paid.receipt_number) == (175, stripe["receipt_number"])
    assert (paid.card_brand, paid.card_last4) == ("visa", "4242")
    assert paid.call.state == "ended" and paid.call.ended_at > paid.paid_at
    assert paid.call.clinician.email == "clinician@harbourside.example"
    assert paid.requested_by.email == "clinician@harbourside.example"
    receipt = db.session.scalar(select(OutboundEmail).filter_by(dedupe_key=f"receipt:{paid.id}"))
    assert (receipt.state, receipt.recipient) == (EmailState.SENT, "jelena@example.org")
    assert receipt.sent_at > paid.paid_at
    assert paid.receipt_number in receipt.body_text


def test_refunds_declines_and_unpaid_requests(runner, history):
    assert runner.invoke(args=["demo-history"], input=json.dumps(history)).exit_code == 0

    partly, whole = request("hist-b"), request("hist-c")
    assert (partly.state, partly.amount_refunded) == (PaymentState.PARTIALLY_REFUNDED, 4000)
    assert (whole.state, whole.amount_refunded) == (PaymentState.REFUNDED, 4500)
    [refund] = db.session.scalars(select(PaymentRefund).filter_by(payment_request_id=partly.id))
    assert refund.stripe_refund_id == history["payments"]["hist-b"]["refunds"][0]["id"]
    assert (refund.state, refund.reason) == ("succeeded", "Patient asked for a refund")
    assert refund.requested_by.email == "clinicadmin@harbourside.example"
    assert refund.created_at == datetime.fromtimestamp(past(11), UTC)
    kinds = [
        e.kind
        for e in db.session.scalars(
            select(CallEvent).filter_by(call_id=whole.call_id).order_by(CallEvent.id)
        )
    ]
    assert kinds == [
        "call_started", "participant_joined", "payment_requested", "payment_declined",
        "payment_paid", "payment_refunded", "call_ended",
    ]  # fmt: skip
    assert request("hist-x").state == PaymentState.EXPIRED
    assert request("hist-x").paid_at is None
    assert request("hist-y").state == PaymentState.CANCELLED


def test_amounts_add_up_to_what_stripe_holds(runner, history):
    assert runner.invoke(args=["demo-history"], input=json.dumps(history)).exit_code == 0

    payments = list(
        db.session.scalars(select(PaymentRequest).where(PaymentRequest.paid_at.is_not(None)))
    )
    gross = sum(p.amount for p in payments)
    refunded = sum(p.amount_refunded for p in payments)
    fees = sum(p.stripe_fee for p in payments)
    stripe = [history["payments"][k] for k in ("hist-a", "hist-b", "hist-c")]
    assert gross == sum(s["amount"] for s in stripe) == 25000
    assert refunded == sum(r["amount"] for s in stripe for r in s["refunds"]) == 8500
    assert gross - fees == sum(s["net"] for s in stripe)
    assert sum(r.amount for r in db.session.scalars(select(PaymentRefund))) == refunded


def test_the_clinic_is_linked_to_the_account_that_took_them(runner, history):
    assert runner.invoke(args=["demo-history"], input=json.dumps(history)).exit_code == 0

    [link] = db.session.scalars(select(StripeLink))
    assert link.account_id == history["account"]
    assert link.clinic.name == CLINICS[0]
    assert link.linked_at < request("hist-a").created_at
    assert link.display_name == "Harbourside GP Clinic Pty Ltd"
    assert link.linked_by.email == "clinicadmin@harbourside.example"


def test_the_audit_log_holds_the_past_as_it_happened(runner, history):
    assert runner.invoke(args=["demo-history"], input=json.dumps(history)).exit_code == 0

    entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.occurred_at)).all()
    actions = [(e.action, e.actor.email.split("@")[0]) for e in entries]
    assert actions[0] == ("stripe.linked", "clinicadmin")
    assert actions.count(("payment.requested", "clinician")) == 5
    assert ("payment.cancelled", "clinician") in actions
    refunds = [e for e in entries if e.action == "payment.refunded"]
    assert [(e.details["amount"], e.occurred_at) for e in refunds] == [
        (4000, datetime.fromtimestamp(past(11), UTC)),
        (4500, refunds[1].occurred_at),
    ]
    assert all(e.organisation_id is not None for e in entries)  # on the admins' audit page
    assert request("hist-a").created_at in {e.occurred_at for e in entries}


def test_a_second_run_writes_nothing_new(runner, history):
    assert runner.invoke(args=["demo-history"], input=json.dumps(history)).exit_code == 0
    models = (Call, CallEvent, PaymentRequest, PaymentRefund, OutboundEmail, StripeLink, AuditEntry)
    before = {m.__name__: count(m) for m in models}

    again = runner.invoke(args=["demo-history"], input=json.dumps(history))

    assert again.exit_code == 0, again.output
    assert "0 past payments written, 5 kept" in again.output
    assert {m.__name__: count(m) for m in models} == before


def test_a_history_from_a_file(runner, history, tmp_path):
    path = tmp_path / "history.json"
    path.write_text(json.dumps(history), encoding="utf-8")

    result = runner.invoke(args=["demo-history", "--file", str(path)])

    assert result.exit_code == 0, result.output
    assert count(PaymentRequest) == 5


@pytest.mark.parametrize(
    "text", ["not json", "[]", '{"payments": {}}', '{"account": "x", "payments": {}}']
)
def test_what_does_not_read_is_refused_and_writes_nothing(runner, demo, text):
    result = runner.invoke(args=["demo-history"], input=text)

    assert result.exit_code != 0
    assert "The demo history was not written" in result.output
    assert count(PaymentRequest) == 0 and count(StripeLink) == 0


def test_a_clinic_linked_to_another_account_keeps_its_link(runner, history, stripe_control):
    other = stripe_control.account(business_name="Someone else")
    history = {**history, "account": other}
    clinic = db.session.scalar(select(Clinic).filter_by(name=CLINICS[0]))
    link_clinic(stripe_control, clinic)
    db.session.commit()

    result = runner.invoke(args=["demo-history"], input=json.dumps(history))

    assert result.exit_code != 0
    assert "is linked to" in result.output
    assert count(PaymentRequest) == 0


def test_payouts_and_what_each_carried_are_read_through_the_adapter(runner, history):
    result = runner.invoke(args=["demo-history"], input=json.dumps(history))

    assert result.exit_code == 0, result.output
    # One weekly payout: the second week's takings were all refunded, a net loss kept back.
    assert "Payouts read from Stripe: 1." in result.output
    [payout] = db.session.scalars(select(Payout))
    assert payout.status == "paid"
    matched = db.session.scalars(
        select(PayoutTransaction).where(PayoutTransaction.payment_request_id.is_not(None))
    )
    assert {t.payment_request.request_key for t in matched} == {"hist-a", "hist-b"}
