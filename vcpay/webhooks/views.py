"""``POST /webhooks/stripe``: verify, store, answer. Processing happens in a worker."""

import logging

from flask import Blueprint, jsonify, request

from vcpay.extensions import csrf, limiter
from vcpay.integrations.stripe_gateway import StripeGateway, WebhookSignatureInvalid
from vcpay.webhooks.services import handoff, store_event

blueprint = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)


def _refuse(message: str, status: int = 400):
    return jsonify({"error": message}), status


@blueprint.route("/stripe", methods=["POST"])
@csrf.exempt  # Stripe signs the body instead
@limiter.exempt
def stripe_webhook():
    gateway = StripeGateway.for_app()
    # The signature covers the exact bytes: never re-serialise before checking it.
    payload = request.get_data(cache=False)
    try:
        event = gateway.verify_webhook(payload, request.headers.get("Stripe-Signature"))
    except WebhookSignatureInvalid as error:
        log.warning("Refused a Stripe webhook: %s", error)
        return _refuse(f"Signature check failed: {error}")
    except ValueError as error:
        return _refuse(str(error))
    row_id = store_event(event)
    if row_id is not None:
        handoff.submit(row_id)
    return jsonify({"received": event.id, "duplicate": row_id is None})
