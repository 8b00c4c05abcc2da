"""Stripe's two error shapes.

The API answers ``{"error": {"type", "message", "code", "doc_url", "param"}}``: a ``code``
from Stripe's list of error codes (``parameter_unknown``, ``parameter_missing``,
``resource_missing``...) always comes with the ``doc_url`` of its page, and ``param`` names
the parameter at fault, for a missing object the path parameter of its URL
(``/v1/payment_intents/{intent}``: ``intent``). OAuth answers a flat ``{"error":
"invalid_grant", "error_description": "..."}``. stripe-python tells them apart by whether
``error`` is an object or a string, and raises its exception classes from them.
"""

import re
from typing import Any

from flask import Response, jsonify

SUPPORT = "Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
ERROR_CODES = "https://stripe.com/docs/error-codes/"
# The path parameter that names each kind of object in its URL, which Stripe quotes as the
# ``param`` of a ``resource_missing`` for it.
PATH_PARAMETERS = {
    "checkout.session": "session",
    "payment_intent": "intent",
    "charge": "charge",
    "refund": "refund",
    "event": "id",
    "balance_transaction": "id",
    "payout": "payout",
    "customer": "customer",
    "payment_method": "payment_method",
    "setup_intent": "intent",
}


KEY_PREFIX = re.compile(r"^(?:sk|rk|pk)_(?:test|live)_")


def masked_key(key: str) -> str:
    """A key as Stripe quotes it back: its prefix and at most its last four characters."""
    match = KEY_PREFIX.match(key)
    prefix = match.group(0) if match else ""
    rest = key[len(prefix) :]
    if len(rest) <= 8:
        return prefix + "*" * len(rest)
    return prefix + "*" * (len(rest) - 4) + rest[-4:]


class StripeError(Exception):
    """An API refusal in Stripe's shape. ``stored`` says whether an idempotent request keeps
    it: Stripe saves results only once an endpoint has begun executing."""

    status = 400
    error_type = "invalid_request_error"
    code: str | None = None
    stored = True

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code:
            self.code = code
        self.headers: dict[str, str] = {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = doc_url(self.code)
        if self.param:
            error["param"] = self.param
        return {"error": error}


def doc_url(code: str) -> str:
    """The page of Stripe's error-code list that explains ``code``."""
    return ERROR_CODES + code.replace("_", "-")


class InvalidRequest(StripeError):
    pass


class InvalidParameter(StripeError):
    """The request was refused before it ran, so an idempotency key stays free."""

    stored = False


class ResourceMissing(StripeError):
    status = 404
    code = "resource_missing"


class UnrecognizedUrl(StripeError):
    status = 404
    stored = False


class AuthenticationFailed(StripeError):
    status = 401
    stored = False


class AccountInvalid(StripeError):
    status = 403
    code = "account_invalid"
    stored = False


class IdempotencyError(StripeError):
    error_type = "idempotency_error"
    stored = False


class IdempotencyInProgress(IdempotencyError):
    status = 409
    code = "idempotency_key_in_use"


class ApiError(StripeError):
    status = 500
    error_type = "api_error"


def missing(param: str) -> InvalidParameter:
    return InvalidParameter(
        f"Missing required param: {param}.", param=param, code="parameter_missing"
    )


def unknown_parameter(param: str) -> InvalidParameter:
    return InvalidParameter(
        f"Received unknown parameter: {param}", param=param, code="parameter_unknown"
    )


def invalid_integer(value: Any, param: str) -> InvalidParameter:
    return InvalidParameter(
        f"Invalid integer: {value}", param=param, code="parameter_invalid_integer"
    )


def exclusive(names: tuple[str, ...], param: str) -> InvalidParameter:
    return InvalidParameter(
        f"You may only specify one of these parameters: {', '.join(names)}.",
        param=param,
        code="parameters_exclusive",
    )


def no_such(kind: str, object_id: str, param: str | None = None) -> ResourceMissing:
    """An object this account does not have, named in the URL unless ``param`` (a body or
    query parameter) named it."""
    return ResourceMissing(
        f"No such {kind}: '{object_id}'", param=param or PATH_PARAMETERS.get(kind, "id")
    )


def stripe_error_response(error: StripeError) -> Response:
    response = jsonify(error.body())
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


class OAuthError(Exception):
    """A refusal from connect.stripe.com's OAuth endpoints, in their flat shape."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def oauth_error_response(error: OAuthError) -> Response:
    response = jsonify(error.body())
    response.status_code = error.status
    return response
