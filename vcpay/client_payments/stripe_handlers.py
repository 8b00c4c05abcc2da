"""Stripe's account events: what the clinic changed in its own Stripe dashboard."""

from contextlib import suppress

from flask import Flask
from flask_babel import lazy_gettext as _l

from vcpay.client_payments.stripe_link import account_disconnected, refresh_links
from vcpay.enablement.services import clinic_admin_emails
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import AccountNotConnected
from vcpay.integrations.stripe_values import (
    AccountAuthorized,
    AccountChanged,
    AccountDeauthorized,
)
from vcpay.mail.services import queue_to_each
from vcpay.public_urls import public_url_for
from vcpay.webhooks.registry import stripe_handlers


def register_stripe_handlers(app: Flask) -> None:
    handlers = stripe_handlers(app)
    handlers.add_change(account_updated, "account.updated")
    handlers.add_change(application_authorized, "account.application.authorized")
    handlers.add_change(application_deauthorized, "account.application.deauthorized")


def account_updated(change: AccountChanged) -> None:
    # Read the account as it is now rather than trusting the event's copy: an older update
    # arriving late then changes nothing.
    # If the account was disconnected since, the deauthorized event removes the link.
    with suppress(AccountNotConnected):
        refresh_links(change.account or "", StripeApi.for_app())


def application_authorized(change: AccountAuthorized) -> None:
    """Linking is completed by the OAuth callback, which knows the clinic; nothing to do."""


def application_deauthorized(change: AccountDeauthorized) -> None:
    for link in account_disconnected(change.account or "", StripeApi.for_app()):
        clinic = link.clinic
        queue_to_each(
            f"stripe-disconnected:{link.id}",
            clinic_admin_emails([clinic]),
            _l("%(clinic)s: Stripe account disconnected", clinic=clinic.name),
            "stripe_disconnected",
            clinic=clinic,
            link=link,
            page=public_url_for("client_payments.clinic", clinic_id=clinic.id),
        )
