"""What happens to every API call (``/v1``) and OAuth call before and after its handler:
a ``Request-Id``, injected faults, form decoding, the platform key, ``Stripe-Account``
scoping, idempotency, and the call log.

Handlers read the decoded parameters with ``api_params`` and the account with
``current_account``; new ``/v1`` routes get all of this by living under ``/v1``.
"""

import base64
import binascii
import secrets
import time
from typing import Any

from flask import Flask, Response, g, request

from sandbox.stripe.errors import (
    AccountInvalid,
    AuthenticationFailed,
    InvalidParameter,
    masked_key,
    unknown_parameter,
)
from sandbox.stripe.events import API_VERSION
from sandbox.stripe.forms import FormError, decode_form
from sandbox.stripe.idempotency import SavedResult
from sandbox.stripe.runtime import standin
from sandbox.stripe.store import new_id

OAUTH_CALLS = ("/oauth/token", "/oauth/deauthorize")
EVERY_ENDPOINT_ACCEPTS = frozenset({"expand"})
NO_KEY = (
    "You did not provide an API key. You need to provide your API key in the Authorization "
    "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
    "https://stripe.com/docs/api#authentication for details, or we can help at "
    "https://support.stripe.com/."
)


def register_gateway(app: Flask) -> None:
    app.before_request(admit_call)
    app.after_request(finish_call)
    app.teardown_request(release_unsettled_key)


def is_api_call() -> bool:
    return request.path == "/v1" or request.path.startswith("/v1/")


def is_oauth_call() -> bool:
    return request.path in OAUTH_CALLS


def admit_call() -> Response | None:
    g.request_id = new_id("req_", 14)
    if not (is_api_call() or is_oauth_call()):
        return None
    idempotency_key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
    g.origin = {"id": g.request_id, "idempotency_key": idempotency_key}
    take_fault()
    g.params = request_params()
    if is_oauth_call():
        return None  # OAuth endpoints authenticate themselves, with OAuth's error shape
    require_platform_key()
    g.stripe_account = connected_account()
    if idempotency_key:
        return claim_idempotency_key(idempotency_key)
    return None


def finish_call(response: Response) -> Response:
    if "Request-Id" not in response.headers:
        response.headers["Request-Id"] = g.get("request_id") or new_id("req_", 14)
    if not (is_api_call() or is_oauth_call()):
        return response
    settle_idempotency_key(response)
    if is_api_call():
        response.headers["Stripe-Version"] = request.headers.get("Stripe-Version", API_VERSION)
    origin = g.get("origin") or {}
    if origin.get("idempotency_key"):
        response.headers["Idempotency-Key"] = origin["idempotency_key"]
    standin().calls.record(
        {
            "method": request.method,
            "path": request.path,
            "stripe_account": request.headers.get("Stripe-Account"),
            "idempotency_key": origin.get("idempotency_key"),
            "status": response.status_code,
        }
    )
    return response


# -- the steps -------------------------------------------------------------------------------


def take_fault() -> None:
    fault = standin().faults.take(request.method, request.path)
    if fault is None:
        return
    if fault.delay:
        time.sleep(fault.delay)
    if fault.status:
        raise fault.refusal()


def request_params() -> dict[str, Any]:
    """Query string and form body, bracketed keys decoded into nested values."""
    pairs = list(request.args.items(multi=True))
    if request.method == "POST":
        pairs += list(request.form.items(multi=True))
    try:
        return decode_form(pairs)
    except FormError as unreadable:
        raise InvalidParameter(str(unreadable), param=unreadable.param) from None


def presented_key() -> str | None:
    """The secret key sent as Bearer (stripe-python) or as the Basic user name (curl -u)."""
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return credentials
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(credentials, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
    return None


def is_platform_key(key: str | None) -> bool:
    expected = standin().settings.secret_key
    return key is not None and secrets.compare_digest(key.encode(), expected.encode())


def require_platform_key() -> None:
    key = presented_key()
    if key is None:
        raise AuthenticationFailed(NO_KEY)
    if not is_platform_key(key):
        raise AuthenticationFailed(f"Invalid API Key provided: {masked_key(key)}")


def no_access_to(account_id: str) -> AccountInvalid:
    key = masked_key(standin().settings.secret_key)
    return AccountInvalid(
        f"The provided key '{key}' does not have access to account '{account_id}' (or that "
        "account does not exist). Application access may have been revoked."
    )


def connected_account() -> str | None:
    """The ``Stripe-Account`` the call acts as; only accounts connected to the platform."""
    account_id = request.headers.get("Stripe-Account", "").strip()
    if not account_id:
        return None
    if not standin().state.is_connected(account_id):
        raise no_access_to(account_id)
    return account_id


def claim_idempotency_key(key: str) -> Response | None:
    endpoint = f"{request.method} {request.path}"
    saved = standin().idempotency.claim(key, g.stripe_account, endpoint, g.params)
    if saved is not None:
        return replay(saved)
    g.idempotency_claim = (key, g.stripe_account)
    return None


def replay(saved: SavedResult) -> Response:
    response = Response(saved.body, status=saved.status, content_type=saved.content_type)
    response.headers["Request-Id"] = saved.request_id
    response.headers["Idempotent-Replayed"] = "true"
    return response


def settle_idempotency_key(response: Response) -> None:
    """Keep the result for the key, unless the request was refused before it ran."""
    claim = g.pop("idempotency_claim", None)
    if claim is None:
        return
    key, account = claim
    if g.get("keep_for_idempotency", True):
        result = SavedResult(
            response.status_code, response.get_data(), response.content_type, g.request_id
        )
        standin().idempotency.save(key, account, result)
    else:
        standin().idempotency.release(key, account)


def release_unsettled_key(_error: BaseException | None) -> None:
    claim = g.pop("idempotency_claim", None)
    if claim is not None:
        standin().idempotency.release(*claim)


# -- for handlers ----------------------------------------------------------------------------


def api_params(*accepted: str) -> dict[str, Any]:
    """The call's parameters, refusing any the endpoint does not take, as Stripe does."""
    params: dict[str, Any] = g.params
    for name in params:
        if name not in accepted and name not in EVERY_ENDPOINT_ACCEPTS:
            raise unknown_parameter(name)
    return params


def current_account() -> str | None:
    """The connected account this call acts as (``Stripe-Account``), or None for the platform."""
    return g.get("stripe_account")
