"""Refunds that wait or fail, refunds made in the Dashboard, the payout schedule, and the
state file keeping balance transactions and payouts."""

import time

import pytest
import requests

from sandbox.stripe.control_client import ControlRefused, StripeControl
from tests.sandbox.stripe_helpers import (
    connect,
    start_stripe_standin,
    stop_stripe_standin,
    stripe_client,
)
from tests.sandbox.test_stripe_balance import paid_charge


@pytest.fixture
def clinic(stripe_api, stripe_sandbox) -> str:
    return connect(stripe_sandbox, stripe_api)


def test_a_pending_refund_then_succeeds(stripe_api, stripe_sandbox, clinic):
    options = {"stripe_account": clinic}
    charge = paid_charge(stripe_api, stripe_sandbox, clinic)
    stripe_sandbox.refunds_start(clinic, "pending")

    refund = stripe_api.v1.refunds.create({"charge": charge.id}, options)
    while_pending = stripe_api.v1.charges.retrieve(charge.id, options=options)
    stripe_sandbox.refund_succeeds(refund.id)
    after = stripe_api.v1.refunds.retrieve(refund.id, options=options)
    charge_after = stripe_api.v1.charges.retrieve(charge.id, options=options)

    assert refund.status == "pending" and refund.balance_transaction.startswith("txn_")
    assert (while_pending.amount_refunded, while_pending.refunded) == (8500, True)
    assert after.status == "succeeded"
    assert charge_after.refunds.data[0].status == "succeeded"
    types = [e["type"] for e in stripe_sandbox.events(account=clinic) if "refund" in e["type"]]
    assert types == ["charge.refunded", "refund.created", "charge.refund.updated", "refund.updated"]
    updated = stripe_sandbox.events(account=clinic, type="refund.updated")[0]
    assert updated["data"]["previous_attributes"] == {"status": "pending"}
    with pytest.raises(ControlRefused):
        stripe_sandbox.refund_succeeds(refund.id)


def test_a_failed_refund_gives_the_money_back(stripe_api, stripe_sandbox, clinic, webhook_receiver):
    options = {"stripe_account": clinic}
    charge = paid_charge(stripe_api, stripe_sandbox, clinic)
    kept = stripe_api.v1.refunds.create({"charge": charge.id, "amount": 1500}, options)
    refund = stripe_api.v1.refunds.create({"charge": charge.id, "amount": 2000}, options)

    stripe_sandbox.refund_fails(refund.id, "lost_or_stolen_card")
    failed = stripe_api.v1.refunds.retrieve(
        refund.id, {"expand": ["failure_balance_transaction"]}, options
    )
    charge_after = stripe_api.v1.charges.retrieve(charge.id, options=options)
    stripe_sandbox.wait_for_webhooks()

    assert (failed.status, failed.failure_reason) == ("failed", "lost_or_stolen_card")
    returned = failed.failure_balance_transaction
    assert (returned.type, returned.reporting_category) == ("refund_failure", "refund_failure")
    assert (returned.amount, returned.net, returned.source) == (2000, 2000, refund.id)
    assert (charge_after.amount_refunded, charge_after.refunded) == (1500, False)
    assert {r.id: r.status for r in charge_after.refunds.data} == {
        refund.id: "failed",
        kept.id: "succeeded",
    }
    assert webhook_receiver.event_types()[-3:] == [
        "charge.refund.updated",
        "refund.updated",
        "refund.failed",
    ]
    last = webhook_receiver.received[-1]["event"]
    assert (last["account"], last["data"]["object"]["id"]) == (clinic, refund.id)
    previous = stripe_sandbox.events(account=clinic, type="refund.updated")[0]["data"]
    assert previous["previous_attributes"]["status"] == "succeeded"
    # The rest can be refunded again, as the failed refund no longer counts.
    again = stripe_api.v1.refunds.create({"charge": charge.id}, options)
    assert again.amount == 8500 - 1500
    with pytest.raises(ControlRefused) as twice:
        stripe_sandbox.refund_fails(refund.id)
    assert twice.value.response.status_code == 409


def test_refund_controls_refuse_what_they_do_not_know(stripe_api, stripe_sandbox, clinic):
    charge = paid_charge(stripe_api, stripe_sandbox, clinic)
    refund = stripe_api.v1.refunds.create({"charge": charge.id}, {"stripe_account": clinic})

    bad_reason = stripe_sandbox.answer("POST", f"refunds/{refund.id}/fail", json={"reason": "x"})
    missing = stripe_sandbox.answer("POST", "refunds/re_missing/fail")
    bad_mode = stripe_sandbox.answer("POST", f"accounts/{clinic}/behaviour", json={"refunds": "x"})

    assert (bad_reason.status_code, missing.status_code, bad_mode.status_code) == (400, 404, 400)
    assert stripe_sandbox.get(f"accounts/{clinic}/behaviour") == {"refunds": "succeeded"}


def test_a_refund_made_in_the_dashboard(stripe_api, stripe_sandbox, clinic):
    charge = paid_charge(stripe_api, stripe_sandbox, clinic)
    dashboard = f"{stripe_sandbox.base}/dashboard/{clinic}"

    before = requests.get(dashboard, timeout=5).text
    answer = requests.post(
        f"{dashboard}/charges/{charge.id}/refund", data={"amount": "20.00"}, timeout=5
    )
    after = stripe_api.v1.charges.retrieve(charge.id, options={"stripe_account": clinic})
    [event] = stripe_sandbox.events(account=clinic, type="refund.created")

    assert f"/dashboard/{clinic}/charges/{charge.id}/refund" in before
    assert ">Refund</button>" in before and "A$85.00" in before
    assert "Refunded A$20.00 (succeeded). Stripe sent charge.refunded." in answer.text
    assert after.amount_refunded == 2000
    assert event["request"] == {"id": None, "idempotency_key": None}
    refused = requests.post(
        f"{dashboard}/charges/{charge.id}/refund", data={"amount": "70.00"}, timeout=5
    )
    assert "is greater than unrefunded amount on charge (A$65.00)" in refused.text


def test_the_dashboard_lists_payouts(stripe_api, stripe_sandbox, clinic):
    paid_charge(stripe_api, stripe_sandbox, clinic)
    stripe_sandbox.settle_balance(clinic)
    [payout] = stripe_sandbox.pay_out(clinic, fail="account_closed")

    page = requests.get(f"{stripe_sandbox.base}/dashboard/{clinic}", timeout=5).text

    assert payout["id"] in page and "A$83.25" in page
    assert "The bank account has been closed." in page


def test_the_payout_schedule_pays_every_account_out(other_stripe_standin):
    url = other_stripe_standin(payout_seconds=0.3)
    client, sandbox = stripe_client(url), StripeControl(url)
    account = connect(sandbox, client)
    charge = paid_charge(client, sandbox, account)

    deadline = time.monotonic() + 15
    while not sandbox.payouts(account=account, status="paid"):
        assert time.monotonic() < deadline, "the schedule did not pay the account out"
        time.sleep(0.05)
    [payout] = sandbox.payouts(account=account)
    carried = client.v1.balance_transactions.list(
        {"payout": payout["id"]}, {"stripe_account": account}
    )

    assert payout["amount"] == 8325 and payout["automatic"] is True
    assert charge.balance_transaction in {t.id for t in carried.data}
    types = [e["type"] for e in sandbox.events(account=account) if e["type"].startswith("pay")]
    assert types[-3:] == ["payout.created", "payout.updated", "payout.paid"]


def test_the_state_file_keeps_the_balance_and_payouts(tmp_path):
    state_file = tmp_path / "stripe-state.json"
    url, server = start_stripe_standin(state_file=str(state_file))
    client, sandbox = stripe_client(url), StripeControl(url)
    account = connect(sandbox, client)
    charge = paid_charge(client, sandbox, account)
    sandbox.settle_balance(account)
    [payout] = sandbox.pay_out(account, arrive="later")
    sandbox.refunds_start(account, "pending")
    stop_stripe_standin(server)

    url, server = start_stripe_standin(state_file=str(state_file))
    try:
        client, sandbox = stripe_client(url), StripeControl(url)
        options = {"stripe_account": account}
        carried = client.v1.balance_transactions.list({"payout": payout["id"]}, options)
        kept = client.v1.payouts.retrieve(payout["id"], options=options)
        refund = client.v1.refunds.create({"charge": charge.id, "amount": 100}, options)
        paid = sandbox.payout_paid(payout["id"])
    finally:
        stop_stripe_standin(server)

    assert {t.id for t in carried.data} == {charge.balance_transaction, kept.balance_transaction}
    assert (kept.status, kept.destination) == ("in_transit", payout["destination"])
    assert refund.status == "pending"
    assert paid["status"] == "paid"
