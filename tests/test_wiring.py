"""The factory wires the features together by name; importing a module wires nothing.

Stripe's event handlers, the apps in a call, what a removed Stripe link settles and the live
call updates are each set on the application that ``create_app`` builds, so two applications
in one process never share them, and an application built without them has none.
"""

import importlib

from flask import Flask

from vcpay.calls.apps import call_apps
from vcpay.client_payments.stripe_link import EXTENSION as LINK_REMOVAL
from vcpay.webhooks.registry import stripe_handlers

HANDLED = {
    "account.updated": "vcpay.client_payments.stripe_handlers",
    "account.application.authorized": "vcpay.client_payments.stripe_handlers",
    "account.application.deauthorized": "vcpay.client_payments.stripe_handlers",
    "checkout.session.completed": "vcpay.payments.stripe_handlers",
    "checkout.session.async_payment_succeeded": "vcpay.payments.stripe_handlers",
    "checkout.session.async_payment_failed": "vcpay.payments.stripe_handlers",
    "checkout.session.expired": "vcpay.payments.stripe_handlers",
    "payment_intent.payment_failed": "vcpay.payments.stripe_handlers",
    "charge.refunded": "vcpay.payments.stripe_handlers",
}
FEATURE_MODULES = (
    "vcpay.calls.events",
    "vcpay.calls.stream",
    "vcpay.calls.waker",
    "vcpay.client_payments.stripe_link",
    "vcpay.client_payments.stripe_handlers",
    "vcpay.payments.call_app",
    "vcpay.payments.reconciler",
    "vcpay.payments.requesting",
    "vcpay.payments.transitions",
    "vcpay.payments.views",
    "vcpay.payments.stripe_handlers",
)


def test_the_factory_gives_each_event_type_its_handler(app):
    handlers = stripe_handlers(app)
    for event_type, module in HANDLED.items():
        handler = handlers.for_type(event_type)
        assert handler is not None and handler.__module__ == module, event_type
    assert handlers.for_type("customer.created") is None  # kept and ignored


def test_the_factory_wires_the_call_apps_link_removal_and_live_events(app):
    assert [a.key for a in call_apps(app)] == [
        "request-payment",
        "fee-before-joining",
        "saved-cards",
    ]
    [settle] = app.extensions[LINK_REMOVAL]
    assert settle.__name__ == "cancel_requests_of_removed_link"
    assert {"call_waker", "call_streams"} <= set(app.extensions)


def test_importing_the_features_wires_nothing(app):
    for module in FEATURE_MODULES:
        importlib.import_module(module)
    bare = Flask("bare")
    assert all(stripe_handlers(bare).for_type(t) is None for t in HANDLED)
    assert list(call_apps(bare)) == []
    assert not {LINK_REMOVAL, "call_waker", "call_streams"} & set(bare.extensions)
