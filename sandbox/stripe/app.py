"""The stand-in's Flask application factory."""

import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox.stripe.accounts import create_demo_accounts
from sandbox.stripe.api import api
from sandbox.stripe.balance_api import balance_api
from sandbox.stripe.checkout_api import checkout_api
from sandbox.stripe.checkout_expiry import expire_due_sessions
from sandbox.stripe.control import control
from sandbox.stripe.control_money import money_control
from sandbox.stripe.customers import customers_api
from sandbox.stripe.dashboard import dashboard
from sandbox.stripe.errors import (
    SUPPORT,
    ApiError,
    OAuthError,
    StripeError,
    UnrecognizedUrl,
    oauth_error_response,
    stripe_error_response,
)
from sandbox.stripe.gateway import is_api_call, register_gateway
from sandbox.stripe.intents_api import intents_api
from sandbox.stripe.oauth import oauth
from sandbox.stripe.payment_methods import payment_methods_api
from sandbox.stripe.payments_api import payments_api
from sandbox.stripe.payouts import run_payout_schedule
from sandbox.stripe.paypage import paypage
from sandbox.stripe.runtime import EXTENSION, StripeStandin
from sandbox.stripe.settings import StripeStandinSettings


def create_stripe_standin(config: Mapping[str, Any] | StripeStandinSettings | None = None) -> Flask:
    """A Stripe (api + connect) stand-in; ``config`` holds ``StripeStandinSettings`` fields.

    It runs a webhook sender thread, a clock that expires Checkout Sessions and, when
    ``payout_seconds`` is set, a payout schedule: stop them
    with ``app.extensions["stripe_standin"].close()``
    (``server.stop_stripe_standin`` does).
    """
    if isinstance(config, StripeStandinSettings):
        settings = config
    else:
        settings = StripeStandinSettings.from_mapping(config)
    app = Flask(__name__, template_folder="templates")
    app.secret_key = secrets.token_hex(16)  # only for the dashboard's flash messages
    app.json.sort_keys = False
    running = StripeStandin.build(settings)
    app.extensions[EXTENSION] = running
    if settings.demo_accounts:
        create_demo_accounts(running)
    running.every(settings.checkout_expiry_seconds, expire_due_sessions)
    if settings.payout_seconds:
        running.every(settings.payout_seconds, run_payout_schedule)
    register_gateway(app)
    register_blueprints(app)
    register_errorhandlers(app)
    return app


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(api)
    app.register_blueprint(checkout_api)
    app.register_blueprint(payments_api)
    app.register_blueprint(intents_api)
    app.register_blueprint(customers_api)
    app.register_blueprint(payment_methods_api)
    app.register_blueprint(balance_api)
    app.register_blueprint(paypage)
    app.register_blueprint(oauth)
    app.register_blueprint(dashboard)
    app.register_blueprint(control)
    app.register_blueprint(money_control)


def register_errorhandlers(app: Flask) -> None:
    app.register_error_handler(StripeError, answer_stripe_error)
    app.register_error_handler(OAuthError, oauth_error_response)
    app.register_error_handler(HTTPException, answer_http_error)


def answer_stripe_error(error: StripeError):
    g.keep_for_idempotency = error.stored
    return stripe_error_response(error)


def answer_http_error(error: HTTPException):
    """Stripe's shapes for API paths, JSON for the control API, Flask's page elsewhere."""
    if is_api_call():
        if error.code in (404, 405):
            return answer_stripe_error(
                UnrecognizedUrl(
                    f"Unrecognized request URL ({request.method}: {request.path}). {SUPPORT}"
                )
            )
        failure = ApiError("An unknown error occurred")
        failure.status = error.code or 500
        return answer_stripe_error(failure)
    if request.path.startswith("/_sandbox"):
        return jsonify({"error": error.description}), error.code
    return error
