"""Error pages: HTML for people, JSON for API clients, never a stack trace."""

from flask import Flask, current_app, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from vcpay.extensions import db
from vcpay.redaction import mask_url

MESSAGES = {
    400: _l("The request could not be understood. Check what you entered and try again."),
    401: _l("Sign in to continue."),
    403: _l("You do not have permission to do that. Ask an administrator of this clinic."),
    404: _l("We could not find that page. It may have moved, or you may not have access."),
    405: _l("That action is not available here."),
    413: _l("What you sent is too large."),
    429: _l("Too many attempts. Wait a few minutes, then try again."),
    500: _l("Something went wrong on our side. Nothing you entered was saved; try again."),
}
CSRF_MESSAGE = _l(
    "This form has expired or was sent from somewhere else. Reload the page and try again."
)

# A patient's pages say nothing of administrators and link to no staff page.
PATIENT_MESSAGES = {
    403: _l("This link does not open that page. Ask the clinic for a new link."),
    404: _l(
        "We could not find that page. The link may be incomplete: ask the clinic for a new one."
    ),
}

API_PREFIXES = ("/api/", "/webhooks/")
PATIENT_PREFIX = "/join/"


def wants_json() -> bool:
    if request.path.startswith(API_PREFIXES) or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def for_patient() -> bool:
    return request.path.startswith(PATIENT_PREFIX)


def render_error(status: int, message: str, headers=None):
    if wants_json():
        response = jsonify(error={"status": status, "message": message})
    elif for_patient():
        response = render_template("errors/patient_error.html", status=status, message=message)
    else:
        response = render_template("errors/error.html", status=status, message=message)
    return response, status, headers or {}


def handle_http_error(error: HTTPException):
    status = error.code or 500
    messages = {**MESSAGES, **PATIENT_MESSAGES} if for_patient() else MESSAGES
    message = str(messages.get(status, error.name))
    headers = {}
    retry_after = error.get_headers() and dict(error.get_headers()).get("Retry-After")
    if retry_after:
        headers["Retry-After"] = retry_after
    if status == 405 and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    return render_error(status, message, headers)


def handle_csrf_error(error: CSRFError):
    return render_error(400, str(CSRF_MESSAGE))


def handle_unexpected_error(error: Exception):
    # Whatever the request half-wrote goes; the traceback goes to the log, not the person.
    db.session.rollback()
    current_app.logger.exception("Unhandled error on %s %s", request.method, mask_url(request.path))
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    return handle_http_error(InternalServerError())


def register_errorhandlers(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(Exception, handle_unexpected_error)
