"""Background work for payment requests."""

from datetime import timedelta

from celery import shared_task
from flask import current_app

from vcpay.integrations.stripe_api import StripeApi
from vcpay.payments import reconciler, saved_cards


def reconcile_thresholds(config) -> dict[str, timedelta]:
    """How long a request stays quiet before the reconciler asks, and how soon it asks again."""
    return {
        "quiet": timedelta(seconds=config["RECONCILE_QUIET_SECONDS"]),
        "ask_again": timedelta(seconds=config["RECONCILE_ASK_AGAIN_SECONDS"]),
    }


@shared_task(name="vcpay.payments.reconcile_payment_requests", ignore_result=True)
def reconcile_payment_requests() -> int:
    """Catch what a missed webhook would have told: expiries, payments, async outcomes."""
    thresholds = reconcile_thresholds(current_app.config)
    return reconciler.reconcile(StripeApi.for_app(), **thresholds)


@shared_task(name="vcpay.payments.detach_old_saved_cards", ignore_result=True)
def detach_old_saved_cards() -> int:
    """Detach at Stripe every card saved more than ``VCPAY_SAVED_CARD_DAYS`` ago."""
    return saved_cards.detach_expired(StripeApi.for_app(), current_app.config["SAVED_CARD_DAYS"])
