from flask import Blueprint, jsonify

from vcpay.extensions import limiter
from vcpay.health.services import health_report, readiness_report

blueprint = Blueprint("health", __name__)


@blueprint.route("/healthz")
@limiter.exempt
def healthz():
    """Liveness: the web process answers (200), so a supervisor restarts it only when it
    does not. The body says how its dependencies are; they decide readiness, not liveness
    (a restart would not bring a database back)."""
    return jsonify(health_report()), 200


@blueprint.route("/readyz")
@limiter.exempt
def readyz():
    """Readiness for a load balancer: 503 while any dependency is away, or beat's heartbeat,
    the Jira poll or the oldest waiting Stripe event is older than its limit."""
    report = readiness_report()
    return jsonify(report), 200 if report["ready"] else 503
