"""Balance transactions and payouts on a connected account, through the real library: the
fee to the cent, refunds leaving the balance, a payout carrying exactly what was available,
the filters and paging of both lists, and a failed payout."""

import time

import pytest
import stripe

from sandbox.stripe.balance import stripe_fee
from sandbox.stripe.control_client import ControlRefused
from tests.sandbox.stripe_helpers import checkout_params, connect


def paid_charge(client, sandbox, account: str, amount: int = 8500) -> stripe.Charge:
    params = checkout_params()
    params["line_items"][0]["price_data"]["unit_amount"] = amount
    session = client.v1.checkout.sessions.create(params, {"stripe_account": account})
    latest = sandbox.pay(session.id)["payment_intent"]["latest_charge"]
    return client.v1.charges.retrieve(latest, options={"stripe_account": account})


@pytest.fixture
def clinic(stripe_api, stripe_sandbox) -> str:
    return connect(stripe_sandbox, stripe_api)


@pytest.mark.parametrize(
    ("amount", "fee"),
    [(8500, 175), (100, 32), (2941, 80), (5000, 115), (12345, 240)],
)
def test_the_fee_is_1_7_percent_and_30_cents_rounded_half_up(amount, fee):
    assert stripe_fee(amount) == fee


def test_a_charge_makes_one_pending_charge_transaction(stripe_api, stripe_sandbox, clinic):
    options = {"stripe_account": clinic}
    charge = paid_charge(stripe_api, stripe_sandbox, clinic)

    txn = stripe_api.v1.balance_transactions.retrieve(charge.balance_transaction, options=options)
    listed = stripe_api.v1.balance_transactions.list(options=options)

    assert [t.id for t in listed.data] == [txn.id]
    assert (txn.type, txn.reporting_category, txn.source) == ("charge", "charge", charge.id)
    assert (txn.amount, txn.fee, txn.net, txn.currency) == (8500, 175, 8325, "aud")
    assert [d.to_dict() for d in txn.fee_details] == [
        {
            "amount": 175,
            "application": None,
            "currency": "aud",
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }
    ]
    assert txn.status == "pending"
    assert txn.available_on >= txn.created + 2 * 24 * 60 * 60
    assert txn.description == "Telehealth consultation with Dr Lee"


def test_settling_makes_pending_funds_available(stripe_api, stripe_sandbox, clinic):
    options = {"stripe_account": clinic}
    charge = paid_charge(stripe_api, stripe_sandbox, clinic)

    assert stripe_sandbox.settle_balance(clinic) == 1
    txn = stripe_api.v1.balance_transactions.retrieve(charge.balance_transaction, options=options)

    assert txn.status == "available" and txn.available_on <= time.time()
    assert stripe_sandbox.settle_balance(clinic) == 0


def test_refunds_take_their_amount_from_the_balance_without_a_fee(
    stripe_api, stripe_sandbox, clinic
):
    options = {"stripe_account": clinic}
    charge = paid_charge(stripe_api, stripe_sandbox, clinic)
    partial = stripe_api.v1.refunds.create({"charge": charge.id, "amount": 2000}, options)
    rest = stripe_api.v1.refunds.create({"charge": charge.id}, options)

    refunds = stripe_api.v1.balance_transactions.list({"type": "refund"}, options)
    by_source = stripe_api.v1.balance_transactions.list({"source": partial.id}, options)
    expanded = stripe_api.v1.refunds.retrieve(rest.id, {"expand": ["balance_transaction"]}, options)

    assert [t.id for t in refunds.data] == [rest.balance_transaction, partial.balance_transaction]
    assert [(t.amount, t.fee, t.net) for t in refunds.data] == [
        (-6500, 0, -6500),
        (-2000, 0, -2000),
    ]
    assert {(t.reporting_category, t.status) for t in refunds.data} == {("refund", "available")}
    assert [t.source for t in refunds.data] == [rest.id, partial.id]
    assert [t.id for t in by_source.data] == [partial.balance_transaction]
    assert expanded.balance_transaction.object == "balance_transaction"
    assert expanded.balance_transaction.amount == -6500


def test_a_payout_carries_exactly_the_available_transactions(
    stripe_api, stripe_sandbox, clinic, webhook_receiver
):
    options = {"stripe_account": clinic}
    first = paid_charge(stripe_api, stripe_sandbox, clinic, 8500)
    second = paid_charge(stripe_api, stripe_sandbox, clinic, 5000)
    refund = stripe_api.v1.refunds.create({"charge": first.id, "amount": 1000}, options)
    stripe_sandbox.settle_balance(clinic)
    later = paid_charge(stripe_api, stripe_sandbox, clinic, 12345)  # still pending

    [made] = stripe_sandbox.pay_out(clinic)
    payout = stripe_api.v1.payouts.retrieve(made["id"], options=options)
    carried = stripe_api.v1.balance_transactions.list({"payout": payout.id}, options)
    stripe_sandbox.wait_for_webhooks()

    assert payout.amount == (8500 - 175) + (5000 - 115) - 1000 == 12210
    assert (payout.status, payout.currency, payout.automatic) == ("paid", "aud", True)
    assert payout.destination.startswith("ba_") and payout.arrival_date <= time.time()
    assert {t.id for t in carried.data} == {
        first.balance_transaction,
        second.balance_transaction,
        refund.balance_transaction,
        payout.balance_transaction,
    }
    own = stripe_api.v1.balance_transactions.retrieve(payout.balance_transaction, options=options)
    assert (own.type, own.reporting_category, own.amount, own.fee, own.source) == (
        "payout", "payout", -12210, 0, payout.id,
    )  # fmt: skip
    assert later.balance_transaction not in {t.id for t in carried.data}
    payout_events = [e for e in webhook_receiver.event_types() if e.startswith("payout.")]
    assert payout_events == ["payout.created", "payout.updated", "payout.paid"]
    paid = [r["event"] for r in webhook_receiver.received if r["event"]["type"] == "payout.paid"]
    assert paid[0]["account"] == clinic
    assert paid[0]["data"]["object"]["id"] == payout.id
    updated = stripe_sandbox.events(account=clinic, type="payout.updated")[0]
    assert updated["data"]["previous_attributes"]["status"] == "in_transit"

    # Nothing is left to pay out until the next charge is available.
    with pytest.raises(ControlRefused) as nothing:
        stripe_sandbox.pay_out(clinic)
    assert nothing.value.response.status_code == 409
    stripe_sandbox.settle_balance(clinic)
    [next_payout] = stripe_sandbox.pay_out(clinic, arrive="later")
    assert (next_payout["amount"], next_payout["status"]) == (12345 - 240, "in_transit")
    assert stripe_sandbox.payout_paid(next_payout["id"])["status"] == "paid"


def test_a_failed_payout_returns_its_money_to_the_next_one(stripe_api, stripe_sandbox, clinic):
    options = {"stripe_account": clinic}
    paid_charge(stripe_api, stripe_sandbox, clinic)
    stripe_sandbox.settle_balance(clinic)

    [failed] = stripe_sandbox.pay_out(clinic, fail="account_closed")
    payout = stripe_api.v1.payouts.retrieve(
        failed["id"], {"expand": ["failure_balance_transaction"]}, options
    )
    [retried] = stripe_sandbox.pay_out(clinic)

    assert (payout.status, payout.failure_code) == ("failed", "account_closed")
    assert payout.failure_message == "The bank account has been closed."
    returned = payout.failure_balance_transaction
    assert (returned.type, returned.reporting_category) == ("payout_failure", "payout_reversal")
    assert (returned.amount, returned.source, returned.status) == (8325, payout.id, "available")
    assert retried["amount"] == 8325
    carried = stripe_api.v1.balance_transactions.list({"payout": retried["id"]}, options)
    assert returned.id in {t.id for t in carried.data}
    types = [e["type"] for e in stripe_sandbox.events(account=clinic) if "payout" in e["type"]]
    assert types == [
        "payout.created", "payout.updated", "payout.failed",
        "payout.created", "payout.updated", "payout.paid",
    ]  # fmt: skip


def test_an_in_transit_payout_can_fail_from_the_controls(stripe_api, stripe_sandbox, clinic):
    paid_charge(stripe_api, stripe_sandbox, clinic)
    stripe_sandbox.settle_balance(clinic)
    [payout] = stripe_sandbox.pay_out(clinic, arrive="later")

    failed = stripe_sandbox.payout_failed(payout["id"], "no_account")

    assert (failed["status"], failed["failure_code"]) == ("failed", "no_account")
    with pytest.raises(ControlRefused):
        stripe_sandbox.payout_paid(payout["id"])
    assert [p["id"] for p in stripe_sandbox.payouts(account=clinic, status="failed")] == [
        payout["id"]
    ]


def test_lists_page_and_filter(stripe_api, stripe_sandbox, clinic):
    options = {"stripe_account": clinic}
    charges = [paid_charge(stripe_api, stripe_sandbox, clinic, 1000 + i) for i in range(5)]
    newest_first = [c.balance_transaction for c in reversed(charges)]

    first = stripe_api.v1.balance_transactions.list({"limit": 2}, options)
    second = stripe_api.v1.balance_transactions.list(
        {"limit": 2, "starting_after": first.data[-1].id}, options
    )
    back = stripe_api.v1.balance_transactions.list(
        {"limit": 2, "ending_before": second.data[0].id}, options
    )
    every = [t.id for t in stripe_api.v1.balance_transactions.list({"limit": 2}, options)
             .auto_paging_iter()]  # fmt: skip
    created = first.data[0].created
    ranged = stripe_api.v1.balance_transactions.list({"created": {"gte": created}}, options)
    none = stripe_api.v1.balance_transactions.list({"created": {"gt": created + 60}}, options)

    assert [t.id for t in first.data] == newest_first[:2] and first.has_more
    assert [t.id for t in second.data] == newest_first[2:4] and second.has_more
    assert [t.id for t in back.data] == newest_first[:2]
    assert every == newest_first
    assert newest_first[0] in {t.id for t in ranged.data} and none.data == []
    assert stripe_api.v1.balance_transactions.list({"type": "payout"}, options).data == []
    stripe_sandbox.settle_balance(clinic)
    [payout] = stripe_sandbox.pay_out(clinic, arrive="later")
    assert [p.id for p in stripe_api.v1.payouts.list({"status": "in_transit"}, options)] == [
        payout["id"]
    ]
    assert stripe_api.v1.payouts.list({"status": "paid"}, options).data == []
    arriving = {"arrival_date": {"gte": payout["arrival_date"]}}
    assert len(stripe_api.v1.payouts.list(arriving, options).data) == 1


def test_refusals(stripe_api, stripe_sandbox, clinic):
    options = {"stripe_account": clinic}
    other = connect(stripe_sandbox, stripe_api)
    charge = paid_charge(stripe_api, stripe_sandbox, clinic)

    def refused(call):
        with pytest.raises(stripe.InvalidRequestError) as error:
            call()
        return error.value

    elsewhere = refused(
        lambda: stripe_api.v1.balance_transactions.retrieve(
            charge.balance_transaction, options={"stripe_account": other}
        )
    )
    assert (elsewhere.http_status, elsewhere.code, elsewhere.param) == (
        404,
        "resource_missing",
        "id",
    )
    no_payout = refused(lambda: stripe_api.v1.payouts.retrieve("po_missing", options=options))
    assert (no_payout.param, no_payout.user_message) == ("payout", "No such payout: 'po_missing'")
    unknown = refused(lambda: stripe_api.v1.balance_transactions.list({"payout": "po_x"}, options))
    assert unknown.param == "payout"
    assert (
        refused(lambda: stripe_api.v1.payouts.list({"status": "lost"}, options)).param == "status"
    )
    with pytest.raises(ControlRefused) as nothing:
        stripe_sandbox.pay_out(clinic)  # the charge is still pending
    assert nothing.value.response.status_code == 409
