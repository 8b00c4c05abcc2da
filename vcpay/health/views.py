from flask import Blueprint, jsonify

from vcpay.extensions import limiter
from vcpay.health.services import OK, health_report

blueprint = Blueprint("health", __name__)


@blueprint.route("/healthz")
@limiter.exempt
def healthz():
    """Liveness: the web process answers. Without its database it can serve nothing (503);
    with Redis or the broker away it still serves, degraded (200)."""
    report = health_report()
    return jsonify(report), 200 if report["database"] == OK else 503


@blueprint.route("/readyz")
@limiter.exempt
def readyz():
    """Readiness for a load balancer: 503 while any dependency is away."""
    report = health_report()
    return jsonify(report), 200 if report["status"] == OK else 503
