"""Stripe's payout events: the payout is read again from Stripe, for the account the event
came from, and only for an account a clinic of vcpay is linked to now.

The event's body is not read beyond the payout's id: its amount and status come from
Stripe's answer, so a late ``payout.updated`` after ``payout.paid`` changes nothing, and a
payout id of another account is not found there.
"""

from flask import Flask

from vcpay.client_payments.stripe_link import live_links_for_account
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import StripeRefused
from vcpay.integrations.stripe_events import PAYOUT_EVENTS
from vcpay.integrations.stripe_values import PayoutChanged
from vcpay.payouts import services
from vcpay.webhooks.registry import IgnoreEvent, stripe_handlers


def register_stripe_handlers(app: Flask) -> None:
    stripe_handlers(app).add_change(payout_changed, *PAYOUT_EVENTS)


def payout_changed(change: PayoutChanged) -> None:
    account = change.account
    if account is None or not live_links_for_account(account):
        raise IgnoreEvent(f"No clinic is linked to {account or 'the platform'}.")
    try:
        services.refresh_payout(account, change.payout_id, StripeApi.for_app())
    except StripeRefused as refused:
        raise IgnoreEvent(
            f"Stripe did not give {change.payout_id} on {account}: {refused}"
        ) from None
