"""What happens to every API call before and after its handler: injected faults, HTTP
authentication as the site's deployment does it, and the call log.

Jira Cloud takes an API token with Basic auth only (the account's email and the token); a
Bearer token there is an OAuth 2.0 access token, which the stand-in never issues, so Bearer is
refused. Bearer personal access tokens belong to Jira Data Center ("Server" here), which also
takes Basic with the user's password (the same token).

Only ``/rest/`` paths pass through here; the agent page and ``/_sandbox`` are left alone.
"""

import base64
import binascii
import time

from flask import Flask, Response, g, request

from sandbox.jira.errors import error_for
from sandbox.jira.faults import JiraFault
from sandbox.jira.records import Account
from sandbox.jira.runtime import standin

# Jira answers these without credentials (but still refuses wrong ones).
ANONYMOUS_SUFFIXES = ("/serverInfo", "/rest/servicedeskapi/info")
NOT_AUTHENTICATED = "You are not authenticated. Authentication required to perform this operation."


def register_gateway(app: Flask) -> None:
    app.before_request(admit_call)
    app.after_request(finish_call)


def is_api_call() -> bool:
    return request.path.startswith("/rest/")


def admit_call() -> Response | None:
    if not is_api_call():
        return None
    fault = standin().faults.take(request.method, request.path)
    g.fault = fault
    if fault and not fault.after_effect:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status:
            return fault_response(fault)
    header = request.headers.get("Authorization")
    if header is None and request.path.endswith(ANONYMOUS_SUFFIXES):
        return None
    account = authenticate(header or "")
    if account is None:
        return unauthorized()
    g.account = account
    return None


def finish_call(response: Response) -> Response:
    if not is_api_call():
        return response
    fault: JiraFault | None = g.get("fault")
    if fault and fault.after_effect and fault.status:
        response = fault_response(fault)
    standin().calls.record(
        {
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode("latin-1"),
            "status": response.status_code,
        }
    )
    if fault and fault.after_effect and fault.delay:
        time.sleep(fault.delay)  # the work is done; the client may give up waiting
    return response


def authenticate(header: str) -> Account | None:
    scheme, _, credentials = header.strip().partition(" ")
    state = standin().state
    if scheme.lower() == "bearer":
        if standin().settings.deployment_type == "Cloud":
            return None
        return state.account_for_token(None, credentials.strip())
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    email, _, token = decoded.partition(":")
    return state.account_for_token(email, token)


def unauthorized() -> Response:
    response = error_for(request.path, 401, NOT_AUTHENTICATED, "sd.error.not.authenticated")
    response.headers["WWW-Authenticate"] = 'Basic realm="protected-area"'
    return response


def fault_response(fault: JiraFault) -> Response:
    response = error_for(request.path, fault.status or 500, fault.message, "sd.error.unavailable")
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
    if fault.status == 429:
        response.headers["RateLimit-Reason"] = "jira-burst-based"
        response.headers["X-RateLimit-Limit"] = "100"
        response.headers["X-RateLimit-Remaining"] = "0"
    return response
