"""The stand-in's Flask application factory."""

import secrets
from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox.jira.agent import agent
from sandbox.jira.control import control
from sandbox.jira.errors import Refusal, error_for, refusal_response
from sandbox.jira.gateway import register_gateway
from sandbox.jira.platform import platform
from sandbox.jira.runtime import EXTENSION, Standin
from sandbox.jira.servicedesk import servicedesk
from sandbox.jira.settings import StandinSettings


def create_jira_standin(config: Mapping[str, Any] | StandinSettings | None = None) -> Flask:
    """A Jira Cloud + Service Management stand-in; ``config`` holds ``StandinSettings`` fields."""
    if isinstance(config, StandinSettings):
        settings = config
    else:
        settings = StandinSettings.from_mapping(config)
    app = Flask(__name__, template_folder="templates")
    app.secret_key = secrets.token_hex(16)  # only for the agent page's flash messages
    app.json.sort_keys = False
    app.extensions[EXTENSION] = Standin.build(settings)
    register_gateway(app)
    register_blueprints(app)
    register_errorhandlers(app)
    return app


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(platform)
    app.register_blueprint(servicedesk)
    app.register_blueprint(control)
    app.register_blueprint(agent)


def register_errorhandlers(app: Flask) -> None:
    app.register_error_handler(Refusal, answer_refusal)
    app.register_error_handler(HTTPException, answer_http_error)


def answer_refusal(refusal: Refusal):
    if request.path.startswith("/_sandbox"):
        return jsonify({"error": refusal.message}), refusal.status
    if request.path.startswith("/rest/"):
        return refusal_response(request.path, refusal)
    return refusal.message, refusal.status


def answer_http_error(error: HTTPException):
    """Jira's error shapes for API paths; Flask's page elsewhere."""
    if request.path.startswith("/_sandbox"):
        return jsonify({"error": error.description}), error.code
    if request.path.startswith("/rest/"):
        return error_for(request.path, error.code or 500, error.description or error.name)
    return error
