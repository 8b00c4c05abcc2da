"""``GET /metrics`` for Prometheus, behind a bearer token: without ``VCPAY_METRICS_TOKEN`` it
does not exist (404); without the token, or with a wrong one, it answers 401."""

import hmac

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST

from vcpay.extensions import limiter
from vcpay.observability.metrics import exposition

blueprint = Blueprint("observability", __name__)


def _presented_token() -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


@blueprint.route("/metrics")
@limiter.exempt  # a scraper asks every few seconds; the token is too long to guess
def metrics():
    expected = current_app.config["METRICS_TOKEN"]
    if not expected:
        abort(404)
    if not hmac.compare_digest(_presented_token().encode(), expected.encode()):
        return Response(
            "A bearer token is needed.\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"', "Content-Type": "text/plain"},
        )
    return Response(exposition(), 200, {"Content-Type": CONTENT_TYPE_LATEST})
