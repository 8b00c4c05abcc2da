"""Past payments written into a connected account (``/_sandbox/accounts/<acct>/history``), read
back through the real library: every object dated in the past, the fee and net to the cent,
weekly payouts carrying exactly what was available by their day, nothing made twice, and no
webhook sent."""

import time

import pytest

from sandbox.stripe.balance import stripe_fee
from sandbox.stripe.control_client import ControlRefused

DAY = 24 * 60 * 60
NOW = int(time.time())


def past(days: float) -> int:
    return int(NOW - days * DAY)


def payment(key: str, days_ago: float, amount: int = 8500, **fields) -> dict:
    return {
        "key": key,
        "amount": amount,
        "description": "Standard consultation",
        "email": f"{key}@example.org",
        "name": "Jelena Petrović",
        "created": past(days_ago),
        **fields,
    }


HISTORY = [
    payment("a", 20, card="4242"),
    payment("b", 19, 12000, card="5555", refunds=[{"amount": 4000, "created": past(18)}]),
    payment("c", 12, 4500, declined_card="4000000000000002"),
    payment(
        "d", 11, 26000, refunds=[{"amount": 26000, "created": past(10), "reason": "duplicate"}]
    ),
    payment("e", 1, 8500),
    payment("x", 15, 8500, outcome="expired"),
]


@pytest.fixture
def account(stripe_sandbox) -> str:
    return stripe_sandbox.account(business_name="Harbourside GP Clinic Pty Ltd")


@pytest.fixture
def written(stripe_sandbox, account, webhook_receiver) -> dict:
    return stripe_sandbox.write_history(account, HISTORY)


def test_each_paid_payment_is_a_complete_checkout_dated_in_the_past(stripe_api, account, written):
    options = {"stripe_account": account}
    answer = written["payments"]["b"]
    session = stripe_api.v1.checkout.sessions.retrieve(
        answer["session_id"], {"expand": ["payment_intent.latest_charge"]}, options
    )
    charge = session.payment_intent.latest_charge

    assert (session.status, session.payment_status) == ("complete", "paid")
    assert session.metadata.to_dict() == {"payment_request": "b"}
    assert session.client_reference_id == "b"
    assert session.customer_details.email == "b@example.org"
    assert session.created < past(19) and session.payment_intent.created < past(19)
    assert session.payment_intent.status == "succeeded"
    assert session.payment_intent.metadata.to_dict() == {"payment_request": "b"}
    assert (charge.id, charge.created, charge.amount) == (answer["charge_id"], past(19), 12000)
    assert charge.payment_method_details.card.brand == answer["card_brand"] == "mastercard"
    assert charge.payment_method_details.card.last4 == answer["card_last4"] == "4444"
    assert charge.receipt_number == answer["receipt_number"]
    assert (charge.amount_refunded, charge.refunded) == (4000, False)
    items = stripe_api.v1.checkout.sessions.line_items.list(session.id, options=options)
    assert [(i.description, i.amount_total) for i in items.data] == [
        ("Standard consultation", 12000)
    ]


def test_fee_and_net_are_stripes_and_the_funds_are_available(stripe_api, account, written):
    options = {"stripe_account": account}
    for key, amount in (("a", 8500), ("b", 12000), ("c", 4500), ("d", 26000)):
        answer = written["payments"][key]
        charge = stripe_api.v1.charges.retrieve(answer["charge_id"], options=options)
        txn = stripe_api.v1.balance_transactions.retrieve(
            charge.balance_transaction, options=options
        )
        assert (txn.amount, txn.fee, txn.net) == (amount, stripe_fee(amount), amount - txn.fee)
        assert (answer["fee"], answer["net"]) == (txn.fee, txn.net)
        assert txn.created == charge.created
        assert (txn.status, txn.available_on) == ("available", charge.created + 2 * DAY)
    recent = stripe_api.v1.charges.retrieve(written["payments"]["e"]["charge_id"], options=options)
    pending = stripe_api.v1.balance_transactions.retrieve(
        recent.balance_transaction, options=options
    )
    assert pending.status == "pending"


def test_refunds_are_dated_and_take_their_money_back(stripe_api, account, written):
    options = {"stripe_account": account}
    answer = written["payments"]["d"]
    [refund] = answer["refunds"]
    found = stripe_api.v1.refunds.retrieve(refund["id"], options=options)
    txn = stripe_api.v1.balance_transactions.retrieve(found.balance_transaction, options=options)

    assert (found.amount, found.created, found.status, found.reason) == (
        26000,
        past(10),
        "succeeded",
        "duplicate",
    )
    assert (txn.type, txn.amount, txn.fee, txn.created) == ("refund", -26000, 0, past(10))
    charge = stripe_api.v1.charges.retrieve(answer["charge_id"], options=options)
    assert charge.refunded is True


def test_a_decline_before_the_payment_and_an_expired_request(stripe_api, account, written):
    options = {"stripe_account": account}
    declined = written["payments"]["c"]
    charges = stripe_api.v1.charges.list({"payment_intent": declined["payment_intent_id"]}, options)
    expired = written["payments"]["x"]
    session = stripe_api.v1.checkout.sessions.retrieve(expired["session_id"], options=options)

    assert sorted(c.status for c in charges.data) == ["failed", "succeeded"]
    assert declined["declined"] == "Your card was declined."
    assert declined["declined_at"] < declined["paid_at"]
    assert (session.status, session.payment_status, session.payment_intent) == (
        "expired",
        "unpaid",
        None,
    )
    assert (expired["status"], expired["charge_id"]) == ("expired", None)


def test_weekly_payouts_carry_exactly_what_was_available_by_their_day(stripe_api, account, written):
    options = {"stripe_account": account}
    made = written["payouts"]
    listed = stripe_api.v1.payouts.list({"limit": 100}, options)
    oldest = past(20)

    assert [p["created"] for p in made] == [oldest + 7 * DAY, oldest + 14 * DAY]
    assert [p.id for p in listed.data] == [p["id"] for p in reversed(made)]
    carried_everything = set()
    for payout in made:
        assert payout["status"] == "paid"
        assert payout["arrival_date"] == payout["created"] + 2 * DAY
        carried = stripe_api.v1.balance_transactions.list(
            {"payout": payout["id"], "limit": 100}, options
        ).data
        own = [t for t in carried if t.type == "payout"]
        rest = [t for t in carried if t.type != "payout"]
        assert [t.amount for t in own] == [-payout["amount"]]
        assert sum(t.net for t in rest) == payout["amount"]
        assert all(t.available_on <= payout["created"] for t in rest)
        carried_everything |= {t.source for t in rest}
    a, b, c, d = (written["payments"][k] for k in "abcd")
    first = stripe_api.v1.balance_transactions.list({"payout": made[0]["id"]}, options).data
    assert {t.source for t in first if t.type != "payout"} == {
        a["charge_id"],
        b["charge_id"],
        b["refunds"][0]["id"],
    }
    assert carried_everything == {
        a["charge_id"],
        b["charge_id"],
        b["refunds"][0]["id"],
        c["charge_id"],
        d["charge_id"],
        d["refunds"][0]["id"],
    }


def test_a_second_call_makes_nothing_new_and_no_webhook_is_sent(
    stripe_sandbox, stripe_api, account, written, webhook_receiver
):
    options = {"stripe_account": account}
    before = stripe_api.v1.balance_transactions.list({"limit": 100}, options).data

    again = stripe_sandbox.write_history(account, HISTORY)

    after = stripe_api.v1.balance_transactions.list({"limit": 100}, options).data
    assert [t.id for t in after] == [t.id for t in before]
    assert again["payments"] == written["payments"]
    assert again["payouts"] == []
    assert len(stripe_sandbox.payouts(account=account)) == 2
    assert stripe_sandbox.events(account=account) == []
    stripe_sandbox.wait_for_webhooks()
    assert webhook_receiver.received == []


def test_the_account_is_connected_for_the_platform(stripe_sandbox, account, written):
    assert stripe_sandbox.accounts()[account]["connected"] is True


@pytest.mark.parametrize(
    ("payments", "message"),
    [
        ([payment("f", -1)], "in the past"),
        ([payment("g", 3, refunds=[{"amount": 9000, "created": past(2)}])], "exceed"),
        ([payment("h", 3), payment("h", 2)], "different"),
        ([payment("i", 3, card="4000000000000002")], "succeeding test card"),
        ([payment("j", 3, amount=10)], "at least 50"),
    ],
)
def test_a_history_that_does_not_read_is_refused_whole(stripe_sandbox, account, payments, message):
    with pytest.raises(ControlRefused) as refused:
        stripe_sandbox.write_history(account, payments)

    assert refused.value.response.status_code == 400
    assert message in refused.value.response.json()["error"]
    assert stripe_sandbox.sessions(account=account) == []
