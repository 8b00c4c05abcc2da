"""Payouts read from Stripe and kept in vcpay, each with the balance transactions it carried,
matched to the payments they are about.

Stripe is the truth: a payout's row is written from what Stripe answers for the account, by
whoever asks (a webhook, the hourly refresh, an admin's Refresh). Two workers may ask at
once: the row is inserted once (its Stripe id is unique) and its status only moves forward,
by a compare-and-set, so a late, older answer never undoes a newer one and a payout is
reported failed once. Its contents are fixed when Stripe makes it, so they are read once.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from vcpay.client_payments.models import LinkState, StripeLink
from vcpay.client_payments.stripe_link import live_links_for_account
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_values import BalanceEntry, PayoutSummary
from vcpay.notices.services import Notice, notify_clinic_admins
from vcpay.payments.amounts import format_amount
from vcpay.payments.models import PaymentRequest
from vcpay.payouts.models import Payout, PayoutTransaction
from vcpay.public_urls import public_url_for
from vcpay.transactions import commit_unit

log = logging.getLogger(__name__)

# Stripe's payout statuses in the order a payout goes through them; a payout that was paid
# can still fail (the bank sends it back), never the reverse.
STATUS_ORDER = {"pending": 0, "in_transit": 1, "paid": 2, "failed": 3, "canceled": 3}
# Payouts whose balance transactions are settled and worth reading.
WITH_CONTENTS = frozenset({"in_transit", "paid", "failed"})
# Each refresh re-reads this far back; older payouts no longer change.
REREAD_WINDOW = timedelta(days=35)
# A payout first seen failed long after the fact (the first read of an account's history) is
# old news: nobody is emailed about it.
NOTICE_WINDOW = timedelta(days=14)


@dataclass(frozen=True)
class Kept:
    payout: Payout
    moved: bool  # inserted, or its status moved forward now


def _timestamp(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _insert_ignoring_duplicates(model, values: dict, *unique: str) -> bool:
    """Insert a row unless one with the same ``unique`` columns exists (made a moment ago by
    another worker too); True if this insert made it."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=unique)
        .returning(model.id)  # the new row's id; nothing when it existed (rowcount is -1)
    )
    return db.session.execute(statement).scalar() is not None


def _payout_values(summary: PayoutSummary) -> dict:
    return {
        "amount": summary.amount,
        "currency": summary.currency[:3],
        "status": summary.status[:20],
        "arrival_date": _timestamp(summary.arrival_date),
        "failure_message": (summary.failure_message or summary.failure_code)[:300],
        "updated_at": utcnow(),
    }


def keep_payout(account_id: str, summary: PayoutSummary) -> Kept | None:
    """The payout's row, made or brought up to what Stripe says; None if its id belongs to
    another account's row (Stripe's ids are unique: that answer is not to be trusted)."""
    values = _payout_values(summary)
    inserted = _insert_ignoring_duplicates(
        Payout,
        {
            **values,
            "stripe_account_id": account_id,
            "payout_id": summary.id,
            "created": _timestamp(summary.created),
        },
        "payout_id",
    )
    payout = db.session.scalar(select(Payout).filter_by(payout_id=summary.id))
    if payout.stripe_account_id != account_id:
        log.warning("Payout %s read for %s belongs to another account", summary.id, account_id)
        return None
    if inserted:
        return Kept(payout, moved=True)
    moved = _move_forward(payout, values)
    db.session.refresh(payout)
    return Kept(payout, moved)


def _move_forward(payout: Payout, values: dict) -> bool:
    """Compare and set: a newer status replaces an older one; the same status refreshes the
    details. True if the status moved now (exactly one of two workers sees that)."""
    rank = STATUS_ORDER.get(values["status"], 0)
    earlier = [s for s, r in STATUS_ORDER.items() if r < rank]
    moved = db.session.execute(
        update(Payout)
        .where(Payout.id == payout.id, Payout.status.in_(earlier))
        .values(values)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount == 1:
        return True
    db.session.execute(
        update(Payout)
        .where(Payout.id == payout.id, Payout.status == values["status"])
        .values(values)
        .execution_options(synchronize_session=False)
    )
    return False


def _linked_clinic_ids(account_id: str) -> set[int]:
    """Clinics that have been linked to the account: only their payments can be in its
    payouts (a removed link's clinic still took its earlier payments there)."""
    return set(db.session.scalars(select(StripeLink.clinic_id).filter_by(account_id=account_id)))


def _payments_by_charge(account_id: str, entries: list[BalanceEntry]) -> dict[str, PaymentRequest]:
    """vcpay's payments the entries are about, by charge id and by payment intent id: made
    on this account, by a clinic linked to it."""
    charges = {e.charge_id for e in entries if e.charge_id}
    intents = {e.payment_intent_id for e in entries if e.payment_intent_id}
    if not charges and not intents:
        return {}
    found = db.session.scalars(
        select(PaymentRequest).where(
            PaymentRequest.stripe_account_id == account_id,
            PaymentRequest.clinic_id.in_(_linked_clinic_ids(account_id)),
            or_(
                PaymentRequest.charge_id.in_(charges), PaymentRequest.payment_intent_id.in_(intents)
            ),
        )
    )
    by_key: dict[str, PaymentRequest] = {}
    for request in found:
        for key in (request.charge_id, request.payment_intent_id):
            if key:
                by_key[key] = request
    return by_key


def _payment_for(entry: BalanceEntry, payments: dict[str, PaymentRequest]) -> PaymentRequest | None:
    request = payments.get(entry.charge_id or "") or payments.get(entry.payment_intent_id or "")
    if request is not None and entry.type == "charge":
        # A payment recorded before its charge or fee was known learns them here.
        request.charge_id = request.charge_id or entry.charge_id
        if request.stripe_fee is None:
            request.stripe_fee = entry.fee
    return request


def read_contents(payout: Payout, stripe_api: StripeApi) -> bool:
    """Read the balance transactions the payout carried, once; True if read now."""
    if payout.contents_read_at is not None or payout.status not in WITH_CONTENTS:
        return False
    entries = stripe_api.payout_transactions(payout.stripe_account_id, payout.payout_id)
    payments = _payments_by_charge(payout.stripe_account_id, entries)
    for entry in entries:
        request = _payment_for(entry, payments)
        _insert_ignoring_duplicates(
            PayoutTransaction,
            {
                "payout_row_id": payout.id,
                "balance_transaction_id": entry.id,
                "type": entry.type[:40],
                "reporting_category": entry.reporting_category[:40],
                "amount": entry.amount,
                "fee": entry.fee,
                "net": entry.net,
                "currency": entry.currency[:3],
                "source_id": entry.source_id[:255],
                "payment_request_id": request.id if request else None,
                "description": entry.description[:300],
                "created": _timestamp(entry.created),
            },
            "payout_row_id",
            "balance_transaction_id",
        )
    payout.contents_read_at = utcnow()
    db.session.flush()
    return True


def refresh_payout(account_id: str, payout_id: str, stripe_api: StripeApi) -> Payout | None:
    """Read one payout of the account from Stripe, keep it and read its contents; flushes,
    the caller commits."""
    summary = stripe_api.retrieve_payout(account_id, payout_id)
    return _keep_with_contents(account_id, summary, stripe_api)


def refresh_account(account_id: str, stripe_api: StripeApi) -> list[Payout]:
    """Read the account's recent payouts (all of them the first time) and the contents of
    each not read yet. Commits each payout as its own unit: one failure keeps the others,
    and no transaction stays open across Stripe's answers."""
    newest = db.session.scalar(
        select(Payout.created)
        .filter_by(stripe_account_id=account_id)
        .order_by(Payout.created.desc())
        .limit(1)
    )
    since = int((min(newest, utcnow()) - REREAD_WINDOW).timestamp()) if newest else None
    summaries = stripe_api.list_payouts(account_id, since)
    seen = {s.id for s in summaries}
    kept = []
    for summary in summaries:
        if (payout := _keep_with_contents(account_id, summary, stripe_api)) is not None:
            kept.append(payout)
        commit_unit()
    # Older payouts still on their way are asked about one by one.
    for payout_id in _unsettled_before(account_id, seen):
        summary = stripe_api.retrieve_payout(account_id, payout_id)
        if (payout := _keep_with_contents(account_id, summary, stripe_api)) is not None:
            kept.append(payout)
        commit_unit()
    return kept


def _keep_with_contents(
    account_id: str, summary: PayoutSummary, stripe_api: StripeApi
) -> Payout | None:
    kept = keep_payout(account_id, summary)
    if kept is None:
        return None
    read_contents(kept.payout, stripe_api)
    if kept.moved and kept.payout.status == "failed":
        notify_failed(kept.payout)
    return kept.payout


def _unsettled_before(account_id: str, seen: set[str]) -> list[str]:
    query = select(Payout.payout_id).where(
        Payout.stripe_account_id == account_id, Payout.status.in_(("pending", "in_transit"))
    )
    return [payout_id for payout_id in db.session.scalars(query) if payout_id not in seen]


def notify_failed(payout: Payout) -> None:
    """Tell the opted-in admins of each clinic linked to the account, once per payout."""
    if payout.created < utcnow() - NOTICE_WINDOW:
        return
    for link in live_links_for_account(payout.stripe_account_id):
        clinic = link.clinic
        notify_clinic_admins(
            clinic,
            Notice.PAYOUT_FAILED,
            payout.payout_id,
            _l("%(clinic)s: a Stripe payout failed", clinic=clinic.name),
            "payout_failed",
            payout=payout,
            amount=format_amount(payout.amount, payout.currency),
            page=public_url_for("payouts.detail", payout_id=payout.id),
        )


def accounts_with_live_links() -> list[str]:
    return sorted(
        set(
            db.session.scalars(
                select(StripeLink.account_id).filter_by(state=LinkState.LINKED.value)
            )
        )
    )
