"""The reconciler: asking Stripe about requests whose webhooks may have been missed."""

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update

from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import StripeApiError
from vcpay.payments import saved_card_charges
from vcpay.payments.models import (
    OPEN_STATES,
    PaymentRequest,
)
from vcpay.payments.transitions import sync_with_stripe
from vcpay.transactions import commit_unit

log = logging.getLogger(__name__)


def reconcile(
    stripe_api: StripeApi, quiet: timedelta, ask_again: timedelta, limit: int = 100
) -> int:
    """Ask Stripe about open requests past their expiry or ``quiet`` for a while (a missed
    webhook), each at most once per ``ask_again``; apply what it says. Returns how many changed."""
    now = utcnow()
    candidates = db.session.scalars(
        select(PaymentRequest)
        .where(
            PaymentRequest.state.in_([s.value for s in OPEN_STATES]),
            PaymentRequest.created_at < now - quiet,
            (PaymentRequest.reconciled_at.is_(None))
            | (PaymentRequest.reconciled_at < now - ask_again)
            | (PaymentRequest.expires_at < now),
        )
        # Least recently asked first: requests Stripe keeps refusing cannot take every place.
        .order_by(PaymentRequest.reconciled_at.nulls_first(), PaymentRequest.expires_at)
        .limit(limit)
    ).all()
    changed = 0
    for request in candidates:
        request_id = request.id
        try:
            if request.off_session:  # a saved card's charge: no Checkout page
                changed += saved_card_charges.ask_stripe(request, stripe_api)
            else:
                changed += sync_with_stripe(request, stripe_api)
        except StripeApiError as error:
            db.session.rollback()
            log.warning("Could not reconcile payment request %s: %s", request_id, error)
            _note_asked(request_id, now)  # asked again after the re-check interval
            continue
        request.reconciled_at = now
        commit_unit()
    return changed


def _note_asked(request_id: int, when: datetime) -> None:
    db.session.execute(
        update(PaymentRequest).where(PaymentRequest.id == request_id).values(reconciled_at=when)
    )
    commit_unit()
