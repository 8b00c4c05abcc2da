"""Connect OAuth as connect.stripe.com runs it for Standard accounts: the authorization
request, the tester's decision, the code exchange and deauthorization.

The consent page and the control API share ``authorization_request``, ``approve`` and
``deny``, so tests without a browser get the same codes and redirects a person would.
"""

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sandbox.stripe.accounts import AccountFieldError, AccountFields, create_test_account
from sandbox.stripe.errors import OAuthError
from sandbox.stripe.events import APPLICATION_AUTHORIZED, APPLICATION_DEAUTHORIZED
from sandbox.stripe.runtime import StripeStandin
from sandbox.stripe.settings import StripeStandinSettings
from sandbox.stripe.state import Connection

SCOPES = ("read_write", "read_only")
DENIED = "The user denied your request"


class ConsentRefused(ValueError):
    """An authorization request Stripe would not serve; the page shows why."""


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scope: str
    state: str | None
    stripe_landing: str
    always_prompt: str
    response_type: str = "code"

    def form_fields(self) -> dict[str, str]:
        """What the consent form carries along, as hidden fields."""
        return {k: v for k, v in asdict(self).items() if v is not None}


def authorization_request(
    params: Mapping[str, Any], settings: StripeStandinSettings
) -> AuthorizationRequest:
    if params.get("client_id") != settings.client_id:
        raise ConsentRefused("No application matches the supplied client identifier.")
    response_type = params.get("response_type") or "code"
    if response_type != "code":
        raise ConsentRefused(f"Invalid response_type: {response_type}. Only 'code' is supported.")
    # Stripe's default scope is read_only, which only Extensions may use.
    scope = params.get("scope") or "read_only"
    if scope not in SCOPES:
        raise ConsentRefused(f"Invalid scope: {scope}. Use read_write.")
    if scope == "read_only":
        raise ConsentRefused(
            "Only Extensions may use the read_only scope; platforms connecting Standard "
            "accounts must ask for read_write."
        )
    state = params.get("state")
    return AuthorizationRequest(
        client_id=settings.client_id,
        redirect_uri=resolve_redirect_uri(params.get("redirect_uri"), settings),
        scope=scope,
        state=str(state) if state is not None else None,
        stripe_landing=str(params.get("stripe_landing") or "register"),
        always_prompt=str(params.get("always_prompt") or "false"),
    )


def resolve_redirect_uri(given: Any, settings: StripeStandinSettings) -> str:
    registered = settings.redirect_uris
    if not given:
        if registered:
            return registered[0]
        raise ConsentRefused("No redirect_uri was given and the application has none registered.")
    given = str(given)
    if registered and given not in registered:
        raise ConsentRefused(
            f"Invalid redirect URI '{given}'. Ensure this uri exactly matches one of the uris "
            "specified in your application settings."
        )
    parts = urlsplit(given)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConsentRefused(f"Invalid redirect URI '{given}': it must be an http(s) URL.")
    return given


def with_query(uri: str, **params: str | None) -> str:
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def approve(standin: StripeStandin, request: AuthorizationRequest, account_id: str) -> str:
    """Issue a code for the chosen account; the redirect that carries it back."""
    if standin.state.account(account_id) is None:
        raise ConsentRefused(f"There is no test account {account_id}.")
    code = standin.state.issue_code(
        account_id, request.client_id, request.scope, request.redirect_uri
    )
    return with_query(
        request.redirect_uri, code=code.code, scope=request.scope, state=request.state
    )


def deny(request: AuthorizationRequest) -> str:
    return with_query(
        request.redirect_uri,
        error="access_denied",
        error_description=DENIED,
        state=request.state,
    )


def expire_code(standin: StripeStandin, code: str) -> bool:
    found = standin.state.code(code)
    if found is None:
        return False
    found.issued_at = time.time() - standin.settings.code_lifetime_seconds - 1
    return True


def application(settings: StripeStandinSettings) -> dict[str, Any]:
    """``data.object`` of the ``account.application.*`` events: the platform's application."""
    return {"id": settings.client_id, "object": "application", "name": settings.platform_name}


TOKEN_TYPE = "bearer"  # noqa: S105  # nosec B105  # OAuth's name for the kind of token


def token_response(connection: Connection) -> dict[str, Any]:
    return {
        "access_token": connection.access_token,
        "livemode": False,
        "refresh_token": connection.refresh_token,
        "scope": connection.scope,
        "stripe_publishable_key": connection.publishable_key,
        "stripe_user_id": connection.account_id,
        "token_type": TOKEN_TYPE,
    }


def redeem_code(
    standin: StripeStandin, code: str, request: dict[str, str | None] | None = None
) -> dict[str, Any]:
    """Exchange a code once, while fresh: the account is connected to the platform."""
    if not code:
        raise OAuthError("invalid_request", "No authorization code provided")
    state = standin.state
    with state.lock:
        found = state.code(code)
        if found is None or found.client_id != standin.settings.client_id:
            raise OAuthError("invalid_grant", f"Authorization code does not exist: {code}")
        if found.used:
            raise OAuthError("invalid_grant", f"Authorization code has already been used: {code}")
        if time.time() - found.issued_at > standin.settings.code_lifetime_seconds:
            raise OAuthError("invalid_grant", f"Authorization code has expired: {code}")
        found.used = True
        connection = state.connect(found.account_id, found.scope)
        standin.events.emit(
            APPLICATION_AUTHORIZED,
            application(standin.settings),
            found.account_id,
            request=request,
        )
    return token_response(connection)


def refresh_access_token(standin: StripeStandin, refresh_token: str) -> dict[str, Any]:
    if not refresh_token:
        raise OAuthError("invalid_request", "No refresh token provided")
    connection = standin.state.connection_for_refresh_token(refresh_token)
    if connection is None:
        raise OAuthError("invalid_grant", f"Refresh token does not exist: {refresh_token}")
    return token_response(standin.state.refresh(connection))


def disconnect(
    standin: StripeStandin, account_id: str, request: dict[str, str | None] | None = None
) -> bool:
    """Revoke the platform's access, as the clinic's Dashboard or the platform can; the
    platform hears of it through ``account.application.deauthorized``."""
    with standin.state.lock:
        if standin.state.disconnect(account_id) is None:
            return False
        standin.events.emit(
            APPLICATION_DEAUTHORIZED, application(standin.settings), account_id, request=request
        )
    return True


def deauthorize(
    standin: StripeStandin,
    client_id: str,
    account_id: str,
    request: dict[str, str | None] | None = None,
) -> None:
    if client_id != standin.settings.client_id or not disconnect(standin, account_id, request):
        raise OAuthError(
            "invalid_client",
            f"This application is not connected to stripe account {account_id}, or that "
            "account does not exist.",
            status=401,
        )


def decide(
    standin: StripeStandin,
    request: AuthorizationRequest,
    decision: str,
    account_id: str | None = None,
    new_account: AccountFields | None = None,
) -> str:
    """The tester's answer on the consent screen, as the redirect back to the platform:
    deny, connect an existing test account, or create one and connect it."""
    if decision == "deny":
        return deny(request)
    if decision != "approve":
        raise ConsentRefused("The decision is either approve or deny.")
    if new_account is not None:
        try:
            account_id = create_test_account(standin, new_account)["id"]
        except AccountFieldError as problem:
            raise ConsentRefused(str(problem)) from None
    if not account_id:
        raise ConsentRefused("Choose an account to connect, or create a new one.")
    return approve(standin, request, account_id)
