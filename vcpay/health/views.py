from flask import Blueprint, jsonify

from vcpay.extensions import limiter
from vcpay.health.services import database_is_reachable, last_heartbeat

blueprint = Blueprint("health", __name__)


@blueprint.route("/healthz")
@limiter.exempt
def healthz():
    """Liveness for a load balancer: the web process answers and reaches its database."""
    database_ok = database_is_reachable()
    beat = last_heartbeat() if database_ok else None
    body = {
        "status": "ok" if database_ok else "unavailable",
        "database": "ok" if database_ok else "unreachable",
        "last_worker_heartbeat": beat.isoformat() if beat else None,
    }
    return jsonify(body), 200 if database_ok else 503
