"""Two workers reading the same payout at once (a webhook and the hourly refresh, or two
webhooks) write one row, one set of its transactions, and report a failure once; an older
answer from Stripe arriving late never moves a payout back."""

import secrets
from functools import partial

import pytest
from sqlalchemy import func, select

from tests.test_races import ROUNDS, at_once
from vcpay.extensions import db
from vcpay.integrations.stripe_values import BalanceEntry, PayoutSummary
from vcpay.payouts import services
from vcpay.payouts.models import Payout, PayoutTransaction

pytestmark = pytest.mark.races
ACCOUNT = "acct_rivals"


def summary(payout_id: str, status: str) -> PayoutSummary:
    return PayoutSummary(payout_id, 5000, "aud", status, 1_790_000_000, 1_789_900_000)


def entries(payout_id: str) -> list[BalanceEntry]:
    charge = BalanceEntry(
        "txn_c" + payout_id, "charge", "charge", 5197, 197, 5000, "aud", "ch_1", "", 1_789_800_000
    )
    own = BalanceEntry(
        "txn_p" + payout_id, "payout", "payout", -5000, 0, -5000, "aud", payout_id, "", 1
    )
    return [charge, own]


class StripeAnswers:
    """What Stripe would answer about the payout's contents, without asking it."""

    def payout_transactions(self, account_id: str, payout_id: str) -> list[BalanceEntry]:
        return entries(payout_id)


def keep_and_commit(status: str, payout_id: str) -> bool:
    kept = services.keep_payout(ACCOUNT, summary(payout_id, status))
    services.read_contents(kept.payout, StripeAnswers())
    db.session.commit()
    return kept.moved


def count(model, payout_id: str) -> int:
    query = select(func.count()).select_from(model)
    if model is PayoutTransaction:
        query = query.join(Payout).where(Payout.payout_id == payout_id)
    else:
        query = query.where(Payout.payout_id == payout_id)
    return db.session.scalar(query)


def test_two_workers_reading_one_payout_at_once_write_it_once(app):
    for _round in range(ROUNDS):
        payout_id = f"po_{secrets.token_hex(8)}"
        rival = partial(keep_and_commit, "failed", payout_id)
        moved = at_once(app, rival, rival)
        assert sorted(moved) == [False, True]  # one of them reports the failure
        assert count(Payout, payout_id) == 1
        assert count(PayoutTransaction, payout_id) == 2


def test_an_older_answer_arriving_late_never_moves_a_payout_back(app):
    payout_id = "po_late_answer"
    assert keep_and_commit("paid", payout_id) is True
    assert keep_and_commit("in_transit", payout_id) is False
    assert db.session.scalar(select(Payout.status).filter_by(payout_id=payout_id)) == "paid"
    assert keep_and_commit("failed", payout_id) is True  # a bank can send a paid payout back
    assert keep_and_commit("failed", payout_id) is False  # reported once
    assert keep_and_commit("paid", payout_id) is False
    assert db.session.scalar(select(Payout.status).filter_by(payout_id=payout_id)) == "failed"


def test_a_payout_id_already_kept_for_another_account_is_not_taken_over(app):
    keep_and_commit("paid", "po_someone_elses")
    assert services.keep_payout("acct_other", summary("po_someone_elses", "failed")) is None
    db.session.commit()
    payout = db.session.scalar(select(Payout).filter_by(payout_id="po_someone_elses"))
    assert (payout.stripe_account_id, payout.status) == (ACCOUNT, "paid")
