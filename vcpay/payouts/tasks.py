"""Background work for payouts: each linked account's payouts read from Stripe."""

from celery import shared_task

from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import AccountNotConnected
from vcpay.payouts import services


@shared_task(name="vcpay.payouts.refresh_all_payouts", ignore_result=True)
def refresh_all_payouts() -> int:
    """One task per account linked now, so a slow or failing account delays no other."""
    accounts = services.accounts_with_live_links()
    db.session.rollback()  # nothing written: end the read before the broker is asked
    for account_id in accounts:
        refresh_account_payouts.delay(account_id)
    return len(accounts)


@shared_task(name="vcpay.payouts.refresh_account_payouts", ignore_result=True)
def refresh_account_payouts(account_id: str) -> int:
    """Catch what a missed payout webhook would have told. Commits as it goes."""
    try:
        kept = services.refresh_account(account_id, StripeApi.for_app())
    except AccountNotConnected:
        db.session.rollback()  # disconnected meanwhile: its deauthorized event removes the link
        return 0
    db.session.commit()
    return len(kept)
