"""Error pages: HTML for people, JSON for API clients, never a stack trace."""

from contextlib import suppress

from flask import Flask, current_app, jsonify, render_template, request, session
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError

from vcpay.extensions import db
from vcpay.i18n import LANGUAGES, browser_locale, html_lang
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
    503: _l("We are very busy right now. Wait a moment, then try again."),
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
# A database that is busy (every pooled connection taken) or away usually is again within
# seconds: people and clients are asked to come back then, not told that something broke.
DATABASE_RETRY_SECONDS = 5
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
    forget_what_the_request_wrote()
    current_app.logger.exception("Unhandled error on %s %s", request.method, mask_url(request.path))
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    return handle_http_error(InternalServerError())


def forget_what_the_request_wrote() -> None:
    # A connection the database dropped cannot roll back: the session goes as the request ends.
    with suppress(SQLAlchemyError):
        db.session.rollback()


SQLITE_UNAVAILABLE = frozenset((5, 6, 14))  # SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CANTOPEN


def is_database_unavailable(error: Exception) -> bool:
    """The pool had no connection to give within its timeout, or the database could not be
    reached or dropped the connection: nothing wrong with the request itself."""
    if isinstance(error, PoolTimeout):
        return True
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError):
        return False
    # SQLite reports a missing table (a bug, 500) as an OperationalError too: there only a
    # busy or locked database, or one that cannot be opened, is the database being away.
    code = getattr(error.orig, "sqlite_errorcode", None)
    return code is None or code & 0xFF in SQLITE_UNAVAILABLE


def handle_database_error(error: SQLAlchemyError):
    if not is_database_unavailable(error):
        return handle_unexpected_error(error)
    forget_what_the_request_wrote()
    # Class names only: a database error's text may quote a statement and its values.
    cause = getattr(error, "orig", None)
    current_app.logger.warning(
        "Database busy or away on %s %s: %s%s",
        request.method,
        mask_url(request.path),
        type(error).__name__,
        f" ({type(cause).__module__}.{type(cause).__name__})" if cause is not None else "",
    )
    return render_unavailable()


def render_unavailable():
    """503, without the database: the usual layout reads it (the signed-in person, their
    menu, whether background work is late), and so does choosing the language of a signed-in
    person; reading it now would only fail again, after another wait for the pool."""
    status, headers = 503, {"Retry-After": str(DATABASE_RETRY_SECONDS)}
    locale = locale_without_the_database()
    with force_locale(locale):
        message = str(MESSAGES[status])
        if wants_json():
            return jsonify(error={"status": status, "message": message}), status, headers
        template = current_app.jinja_env.get_template("errors/unavailable.html")
        page = template.render(status=status, message=message, html_lang=html_lang(locale))
    return page, status, headers


def locale_without_the_database() -> str:
    """The language chosen in this browser, else the one it asks for; a signed-in person's
    saved choice is in the database."""
    chosen = session.get("locale")
    return chosen if chosen in LANGUAGES else browser_locale(request.accept_languages)


def register_errorhandlers(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(PoolTimeout, handle_database_error)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected_error)
