"""vcpay with one extra route, for ``bench/webhook_ingest.py``: ``gunicorn bench.webhook_app:app``.

``POST /webhooks/bench-baseline`` checks a Stripe signature exactly as ``POST /webhooks/stripe``
does and answers, without storing or enqueueing anything: the floor the ingest endpoint is
compared with. It exists only in this module, never in vcpay itself. It sits under
``/webhooks/`` so that it skips the form-shape check exactly as the webhook does (elsewhere a
signed JSON body is refused with 400 before any signature is checked).
"""

from flask import current_app, jsonify, request

from vcpay import create_app
from vcpay.extensions import csrf, limiter
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import WebhookSignatureInvalid

app = create_app()


@app.post("/webhooks/bench-baseline")
@csrf.exempt
@limiter.exempt
def baseline():
    stripe_api = StripeApi.from_config(current_app.config)
    payload = request.get_data(cache=False)
    try:
        event = stripe_api.verify_webhook(payload, request.headers.get("Stripe-Signature"))
    except (WebhookSignatureInvalid, ValueError) as error:
        return jsonify({"error": str(error)}), 400
    return jsonify({"received": event.id, "duplicate": False})
