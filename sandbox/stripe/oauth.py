"""The connect base's OAuth endpoints: the consent screen people see, and the token and
deauthorize calls the platform makes with its secret key."""

from flask import Blueprint, Response, g, jsonify, redirect, render_template, request

from sandbox.stripe import connect
from sandbox.stripe.accounts import AccountFields, display_name
from sandbox.stripe.errors import OAuthError, masked_key
from sandbox.stripe.gateway import is_platform_key, presented_key
from sandbox.stripe.runtime import standin

oauth = Blueprint("oauth", __name__)

NO_CREDENTIALS = (
    "No authentication was provided. Send your secret API key using the Authorization "
    "header, or as a client_secret POST parameter."
)


def consent_page(
    authorization: connect.AuthorizationRequest, error: str | None = None, status: int = 200
):
    accounts = [
        {"id": a["id"], "name": display_name(a), "email": a["email"]}
        for a in standin().state.accounts()
    ]
    return render_template(
        "stripe_standin/consent.html",
        authorization=authorization,
        accounts=accounts,
        platform_name=standin().settings.platform_name,
        error=error,
        form=request.form,
    ), status


def refused_page(problem: connect.ConsentRefused):
    return render_template("stripe_standin/consent_refused.html", message=str(problem)), 400


@oauth.get("/oauth/authorize")
def authorize():
    try:
        authorization = connect.authorization_request(request.args, standin().settings)
    except connect.ConsentRefused as problem:
        return refused_page(problem)
    return consent_page(authorization)


@oauth.post("/oauth/authorize")
def decide():
    form = request.form
    try:
        authorization = connect.authorization_request(form, standin().settings)
    except connect.ConsentRefused as problem:
        return refused_page(problem)
    chosen = form.get("account") or None
    new_account = None
    if chosen == "new":
        chosen = None
        new_account = AccountFields(
            business_name=form.get("business_name", ""),
            email=form.get("email", ""),
            country=form.get("country", "") or "AU",
        )
    try:
        location = connect.decide(
            standin(), authorization, form.get("decision", ""), chosen, new_account
        )
    except connect.ConsentRefused as problem:
        return consent_page(authorization, str(problem), 400)
    return redirect(location, code=302)


def require_platform_credentials() -> None:
    """The token and deauthorize calls authenticate with the platform's secret key."""
    key = presented_key() or g.params.get("client_secret")
    if not key:
        raise OAuthError("invalid_client", NO_CREDENTIALS, status=401)
    if not is_platform_key(key):
        raise OAuthError("invalid_client", f"Invalid API Key provided: {masked_key(key)}", 401)


@oauth.post("/oauth/token")
def token() -> Response:
    require_platform_credentials()
    params = g.params
    grant_type = params.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "No grant type specified")
    if grant_type == "authorization_code":
        issued = connect.redeem_code(standin(), str(params.get("code") or ""), g.origin)
    elif grant_type == "refresh_token":
        issued = connect.refresh_access_token(standin(), str(params.get("refresh_token") or ""))
    else:
        raise OAuthError("unsupported_grant_type", f"Unsupported grant type: {grant_type}")
    return jsonify(issued)


@oauth.post("/oauth/deauthorize")
def deauthorize() -> Response:
    require_platform_credentials()
    params = g.params
    account_id = str(params.get("stripe_user_id") or "")
    if not account_id:
        raise OAuthError("invalid_request", "No stripe_user_id provided")
    connect.deauthorize(standin(), str(params.get("client_id") or ""), account_id, g.origin)
    return jsonify({"stripe_user_id": account_id})
