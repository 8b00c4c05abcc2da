"""Refusals, and the two error shapes Jira answers with.

The platform API (/rest/api) answers ``{"errorMessages": [...], "errors": {...}}``; the
servicedeskapi answers ``ErrorResponse {errorMessage, i18nErrorMessage}``. The jira library
reads both.
"""

from flask import Response, jsonify


class Refusal(Exception):
    """An operation Jira would refuse; ``status`` is the HTTP status it answers with."""

    status = 400
    i18n_key = "sd.error.bad.request"

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field  # the platform API reports some errors per field


class Invalid(Refusal):
    status = 400


class Forbidden(Refusal):
    status = 403
    i18n_key = "sd.error.forbidden"


class NotFound(Refusal):
    status = 404
    i18n_key = "sd.error.not.found"


class Conflict(Refusal):
    status = 409
    i18n_key = "sd.error.conflict"


def platform_error(status: int, message: str, field: str | None = None) -> Response:
    if field:
        body = {"errorMessages": [], "errors": {field: message}}
    else:
        body = {"errorMessages": [message], "errors": {}}
    response = jsonify(body)
    response.status_code = status
    return response


def servicedesk_error(status: int, message: str, i18n_key: str = "sd.error") -> Response:
    response = jsonify(
        {"errorMessage": message, "i18nErrorMessage": {"i18nKey": i18n_key, "parameters": []}}
    )
    response.status_code = status
    return response


def error_for(path: str, status: int, message: str, i18n_key: str = "sd.error") -> Response:
    """The error shape of the API that ``path`` belongs to."""
    if path.startswith("/rest/servicedeskapi"):
        return servicedesk_error(status, message, i18n_key)
    return platform_error(status, message)


def refusal_response(path: str, refusal: Refusal) -> Response:
    if path.startswith("/rest/servicedeskapi"):
        return servicedesk_error(refusal.status, refusal.message, refusal.i18n_key)
    return platform_error(refusal.status, refusal.message, refusal.field)
