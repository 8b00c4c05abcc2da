"""Signed webhooks. ``POST /webhooks/stripe``: verify, store, answer; a worker processes.
``POST /webhooks/jira``: verify, then ask a worker to look at that request now."""

import logging

from flask import Blueprint, current_app, jsonify, request
from kombu.exceptions import OperationalError

from vcpay.config import webhook_secret
from vcpay.enablement.services import look_at_request_soon
from vcpay.extensions import csrf, limiter
from vcpay.integrations.servicedesk import WebhookRefused, changed_request_key
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import WebhookSignatureInvalid
from vcpay.observability.context import bind
from vcpay.webhooks.grouping import GroupFailed
from vcpay.webhooks.inbox import store_event
from vcpay.webhooks.services import handoff, settled_on_arrival

blueprint = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)


def _refuse(message: str, status: int = 400):
    return jsonify({"error": message}), status


@blueprint.route("/stripe", methods=["POST"])
@csrf.exempt  # Stripe signs the body instead
@limiter.exempt
def stripe_webhook():
    if webhook_secret(current_app.config, "STRIPE_WEBHOOK_SECRET") is None:
        return _refuse(
            "Stripe webhooks are off: set VCPAY_STRIPE_WEBHOOK_SECRET to the endpoint's own "
            "signing secret to turn them on.",
            404,
        )
    stripe_api = StripeApi.for_app()
    # The signature covers the exact bytes: never re-serialise before checking it.
    payload = request.get_data(cache=False)
    try:
        event = stripe_api.verify_webhook(payload, request.headers.get("Stripe-Signature"))
    except WebhookSignatureInvalid as error:
        log.warning("Refused a Stripe webhook: %s", error)
        return _refuse(f"Signature check failed: {error}")
    except ValueError as error:
        return _refuse(str(error))
    bind(stripe_event_id=event.id)  # this request's log lines name the event
    settled = settled_on_arrival(event)
    try:
        row_id = store_event(event, settled)
    except GroupFailed as error:  # nothing of it was kept: Stripe delivers a 5xx again
        log.warning("Could not store Stripe event %s: %s", event.id, error)
        return _refuse("vcpay could not store this event now; try again later.", 503)
    if row_id is not None and not settled:
        handoff.submit(row_id)
    return jsonify({"received": event.id, "duplicate": row_id is None})


@blueprint.route("/jira", methods=["POST"])
@csrf.exempt  # Jira signs the body instead
@limiter.limit("120 per minute")  # each accepted call costs reads of Jira; polling covers the rest
def jira_webhook():
    """Polling stays the source of truth: this only makes a decision show sooner."""
    secret = webhook_secret(current_app.config, "JIRA_WEBHOOK_SECRET")
    if secret is None:
        return _refuse("Jira webhooks are off: set VCPAY_JIRA_WEBHOOK_SECRET to turn them on.", 404)
    payload = request.get_data(cache=False)
    try:
        key = changed_request_key(payload, request.headers.get("X-Hub-Signature"), secret)
    except WebhookRefused as error:
        log.warning("Refused a Jira webhook: %s", error)
        return _refuse(str(error))
    try:
        queued = key is not None and look_at_request_soon(key)
    except OperationalError:  # the broker is down: Jira retries a 5xx, and polling goes on
        log.warning("Could not queue a look at %s for Jira's webhook", key)
        return _refuse("vcpay could not queue this change now; try again later.", 503)
    return jsonify({"key": key, "queued": queued}), 202 if queued else 200
