"""vcpay: the Payment Gateway of a telehealth video-call platform."""

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from vcpay.config import (
    derived_settings,
    load_settings,
    refuse_unsafe_settings,
    webhook_secret,
)
from vcpay.observability.logs import configure_logging

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, instance_path=os.environ.get("VCPAY_INSTANCE_PATH") or None)
    configure(app, overrides)
    register_trusted_proxies(app)
    register_input_checks(app)
    register_observability(app)
    register_extensions(app)
    register_blueprints(app)
    register_call_apps(app)
    register_stripe_handlers(app)
    register_stripe_link_removal(app)
    register_errorhandlers(app)
    register_security_headers(app)
    register_live_events(app)
    register_template_helpers(app)
    register_cli(app)
    register_celery(app)
    return app


def configure(app: Flask, overrides: dict[str, Any] | None) -> None:
    overrides = overrides or {}
    app.config.update(load_settings(app.instance_path), **overrides)
    app.config.update(derived_settings(app.config))
    app.config.update(overrides)  # a test may override a derived setting too
    refuse_unsafe_settings(app.config)
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    # Alembic announces each plugin it loads; that is noise in every command's output.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if webhook_secret(app.config, "STRIPE_WEBHOOK_SECRET") is None:
        app.logger.warning(
            "VCPAY_STRIPE_WEBHOOK_SECRET is not set: Stripe's webhooks are refused, and payments "
            "are confirmed only by the patient's confirmation page and the reconciler."
        )


def register_trusted_proxies(app: Flask) -> None:
    """Behind the proxies ``VCPAY_TRUSTED_PROXIES`` counts, the client's address, scheme and
    host are what they forwarded; with none, forwarded headers are anyone's to write."""
    proxies = app.config["TRUSTED_PROXIES"]
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)


def register_observability(app: Flask) -> None:
    """First of the request hooks: every later one's log lines carry the request's ids."""
    from vcpay.observability.hooks import register_observability as register

    register(app)


def register_input_checks(app: Flask) -> None:
    from vcpay.inputs import register_input_checks as register

    register(app)


def register_extensions(app: Flask) -> None:
    from vcpay.database import declared_by_the_models
    from vcpay.extensions import babel, csrf, db, limiter, login_manager, migrate
    from vcpay.i18n import select_locale
    from vcpay.transactions import register_after_commit_hooks

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), include_object=declared_by_the_models)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=select_locale)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.sign_in"
    login_manager.login_message = None
    login_manager.session_protection = "strong"
    _register_models()
    register_after_commit_hooks()


def _register_models() -> None:
    """Import every model module so the metadata (and Alembic) sees all tables."""
    import vcpay.audit.models
    import vcpay.calls.models
    import vcpay.client_payments.models
    import vcpay.enablement.models
    import vcpay.health.models
    import vcpay.mail.models
    import vcpay.payments.models
    import vcpay.payouts.models
    import vcpay.people.models
    import vcpay.teams.models
    import vcpay.webhooks.models  # noqa: F401


def register_blueprints(app: Flask) -> None:
    from vcpay.audit.views import blueprint as audit
    from vcpay.auth.views import blueprint as auth
    from vcpay.calls.guest import blueprint as guest
    from vcpay.calls.views import blueprint as calls
    from vcpay.client_payments.account_views import blueprint as stripe_accounts
    from vcpay.client_payments.views import blueprint as client_payments
    from vcpay.enablement.views import blueprint as enablement
    from vcpay.health.views import blueprint as health
    from vcpay.ledger.views import blueprint as ledger
    from vcpay.main.views import blueprint as main
    from vcpay.payments.fee_views import blueprint as fees
    from vcpay.payments.refund_views import blueprint as refunds
    from vcpay.payments.saved_card_views import blueprint as saved_cards
    from vcpay.payments.views import blueprint as payments
    from vcpay.payouts.views import blueprint as payouts
    from vcpay.people.two_factor_views import blueprint as two_factor
    from vcpay.people.views import blueprint as people
    from vcpay.teams.views import blueprint as teams
    from vcpay.webhooks.views import blueprint as webhooks

    blueprints = (
        main,
        auth,
        people,
        teams,
        two_factor,
        client_payments,
        stripe_accounts,
        enablement,
        calls,
        guest,
        payments,
        fees,
        saved_cards,
        refunds,
        ledger,
        audit,
        payouts,
        health,
        webhooks,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint)


def register_call_apps(app: Flask) -> None:
    """What the call screens host in Apps & Tools, in this order."""
    from vcpay.payments.call_app import register_call_app as request_payment
    from vcpay.payments.fee_app import register_call_app as fee_before_joining
    from vcpay.payments.saved_card_app import register_call_app as saved_cards

    request_payment(app)
    fee_before_joining(app)
    saved_cards(app)


def register_stripe_handlers(app: Flask) -> None:
    """Which Stripe events each feature handles (a type nobody handles is kept, ignored)."""
    from vcpay.client_payments.stripe_handlers import register_stripe_handlers as account_events
    from vcpay.payments.stripe_handlers import register_stripe_handlers as payment_events
    from vcpay.payouts.stripe_handlers import register_stripe_handlers as payout_events

    account_events(app)
    payment_events(app)
    payout_events(app)


def register_stripe_link_removal(app: Flask) -> None:
    """What a clinic's Stripe link being removed settles in the same commit."""
    from vcpay.client_payments.stripe_link import when_link_removed
    from vcpay.payments.transitions import cancel_requests_of_removed_link

    when_link_removed(app, cancel_requests_of_removed_link)


def register_live_events(app: Flask) -> None:
    """The call screens' live updates: this process's waker and its streams."""
    from vcpay.calls.stream import register_live_events as register

    register(app)


def register_errorhandlers(app: Flask) -> None:
    from vcpay.errors import register_errorhandlers as register

    register(app)


def register_security_headers(app: Flask) -> None:
    from vcpay.security import register_security_headers as register

    register(app)


def register_template_helpers(app: Flask) -> None:
    from vcpay.clinic_clocks import (
        clinic_clock,
        clinic_day,
        clinic_iso,
        clinic_moment,
        clinic_time,
    )
    from vcpay.enablement import wording
    from vcpay.forms import field_aria
    from vcpay.main.navigation import navigation_context
    from vcpay.payments.amounts import format_amount

    app.context_processor(navigation_context)
    app.add_template_filter(format_amount, "money")
    app.add_template_filter(clinic_time, "clinic_time")
    app.add_template_global(clinic_moment, "clinic_moment")
    app.add_template_global(clinic_day, "clinic_day")
    app.add_template_global(clinic_clock, "clinic_clock")
    app.add_template_global(clinic_iso, "clinic_iso")
    for name in (
        "timeline_entry",
        "service_desk_status",
        "review_reason",
        "decline_words",
        "last_attempt",
    ):
        app.add_template_filter(getattr(wording, name), name)
    app.add_template_global(field_aria, "field_aria")


def register_cli(app: Flask) -> None:
    from vcpay.cli import commands

    for command in commands:
        app.cli.add_command(command)


def register_celery(app: Flask) -> None:
    from workers import celery_init_app

    celery_init_app(app)
