"""Connect OAuth through the real stripe library: consent page, code exchange, deauthorize."""

import re

import pytest
import requests
import stripe
from stripe import oauth_error

from tests.sandbox.stripe_helpers import (
    CLIENT_ID,
    REDIRECT_URI,
    authorize,
    code_for,
    connect,
    query_of,
    stripe_client,
)


def authorize_url(client: stripe.StripeClient, state: str = "clinic-7-nonce") -> str:
    return client.oauth.authorize_url(
        {
            "scope": "read_write",
            "state": state,
            "stripe_landing": "login",
            "redirect_uri": REDIRECT_URI,
        }
    )


def hidden_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


def test_authorize_url_lands_on_the_consent_page_keeping_the_state(stripe_api, stripe_sandbox):
    account = stripe_sandbox.create_account(business_name="Harbourside GP Clinic Pty Ltd")
    url = authorize_url(stripe_api)

    page = requests.get(url, timeout=5)

    assert url.startswith(f"{stripe_sandbox.base}/oauth/authorize?")
    assert page.status_code == 200
    assert page.headers["Request-Id"].startswith("req_")
    assert "Connect my Stripe account" in page.text and "Deny access" in page.text
    assert f"Harbourside GP Clinic Pty Ltd ({account['id']})</label>" in page.text
    for label in ("Business name", "Email", "Country"):
        assert f">{label}</label>" in page.text
    assert hidden_fields(page.text) == {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "read_write",
        "state": "clinic-7-nonce",
        "stripe_landing": "login",
        "always_prompt": "false",
        "response_type": "code",
    }


def test_an_approved_code_exchanges_once_for_the_account(stripe_api, stripe_sandbox):
    account = stripe_sandbox.create_account()
    location = authorize(stripe_sandbox, account=account["id"], state="s-1")
    returned = query_of(location)

    token = stripe_api.oauth.token({"grant_type": "authorization_code", "code": returned["code"]})
    with pytest.raises(oauth_error.InvalidGrantError) as reused:
        stripe_api.oauth.token({"grant_type": "authorization_code", "code": returned["code"]})

    assert location.startswith(REDIRECT_URI + "?")
    assert returned["scope"] == "read_write" and returned["state"] == "s-1"
    assert returned["code"].startswith("ac_")
    assert token.to_dict().keys() == {
        "access_token",
        "livemode",
        "refresh_token",
        "scope",
        "stripe_publishable_key",
        "stripe_user_id",
        "token_type",
    }
    assert token.stripe_user_id == account["id"]
    assert token.access_token.startswith("sk_test_")
    assert token.stripe_publishable_key.startswith("pk_test_")
    assert (token.livemode, token.scope, token.token_type) == (False, "read_write", "bearer")
    assert "already been used" in reused.value.user_message
    assert reused.value.http_status == 400


def test_the_exchange_connects_the_account_and_emits_authorized(stripe_api, stripe_sandbox):
    account_id = connect(stripe_sandbox, stripe_api)

    events = stripe_api.v1.events.list(options={"stripe_account": account_id})
    connected = stripe_sandbox.get("/accounts")

    assert [e.type for e in events.data] == ["account.application.authorized"]
    event = events.data[0]
    assert event.account == account_id
    assert event.data.object.to_dict() == {
        "id": CLIENT_ID,
        "object": "application",
        "name": "vcpay",
    }
    assert event.request.id.startswith("req_")
    assert [(a["id"], a["connected"]) for a in connected] == [(account_id, True)]


def test_unknown_and_expired_codes_are_invalid_grants(stripe_api, stripe_sandbox):
    account = stripe_sandbox.create_account()
    code = code_for(stripe_sandbox, account["id"])
    stripe_sandbox.post(f"/oauth/codes/{code}/expire")

    with pytest.raises(oauth_error.InvalidGrantError) as unknown:
        stripe_api.oauth.token({"grant_type": "authorization_code", "code": "ac_nope"})
    with pytest.raises(oauth_error.InvalidGrantError) as expired:
        stripe_api.oauth.token({"grant_type": "authorization_code", "code": code})

    assert unknown.value.user_message == "Authorization code does not exist: ac_nope"
    assert unknown.value.json_body == {
        "error": "invalid_grant",
        "error_description": "Authorization code does not exist: ac_nope",
    }
    assert "expired" in expired.value.user_message


def test_a_wrong_platform_key_is_an_invalid_client(stripe_url, stripe_sandbox):
    account = stripe_sandbox.create_account()
    code = code_for(stripe_sandbox, account["id"])
    wrong = stripe_client(stripe_url, key="sk_test_someone_elses_key_1234")

    with pytest.raises(oauth_error.InvalidClientError) as refused:
        wrong.oauth.token({"grant_type": "authorization_code", "code": code})

    assert refused.value.http_status == 401
    assert "sk_test_someone_elses_key_1234" not in refused.value.http_body
    assert refused.value.user_message.endswith("1234")


def test_other_grant_types_are_unsupported(stripe_api):
    with pytest.raises(oauth_error.UnsupportedGrantTypeError):
        stripe_api.oauth.token({"grant_type": "client_credentials"})


def test_a_refresh_token_gives_a_new_access_token(stripe_api, stripe_sandbox):
    account = stripe_sandbox.create_account()
    code = code_for(stripe_sandbox, account["id"])
    first = stripe_api.oauth.token({"grant_type": "authorization_code", "code": code})

    refreshed = stripe_api.oauth.token(
        {"grant_type": "refresh_token", "refresh_token": first.refresh_token}
    )

    assert refreshed.stripe_user_id == account["id"]
    assert refreshed.access_token != first.access_token


def test_deauthorize_revokes_access(stripe_api, stripe_sandbox):
    account_id = connect(stripe_sandbox, stripe_api)
    assert stripe_api.v1.accounts.retrieve(account_id).id == account_id

    revoked = stripe_api.oauth.deauthorize({"stripe_user_id": account_id})
    with pytest.raises(stripe.PermissionError) as retrieve:
        stripe_api.v1.accounts.retrieve(account_id)
    with pytest.raises(stripe.PermissionError):
        stripe_api.v1.events.list(options={"stripe_account": account_id})
    with pytest.raises(oauth_error.InvalidClientError) as again:
        stripe_api.oauth.deauthorize({"stripe_user_id": account_id})

    assert revoked.to_dict() == {"stripe_user_id": account_id}
    assert retrieve.value.json_body["error"]["code"] == "account_invalid"
    assert retrieve.value.http_status == 403
    assert again.value.user_message == (
        f"This application is not connected to stripe account {account_id}, "
        "or that account does not exist."
    )
    types = [e["type"] for e in stripe_sandbox.events(account=account_id)]
    assert types == ["account.application.authorized", "account.application.deauthorized"]


def test_deauthorize_with_another_client_id_is_refused(stripe_api, stripe_sandbox):
    account_id = connect(stripe_sandbox, stripe_api)

    with pytest.raises(oauth_error.InvalidClientError):
        stripe_api.oauth.deauthorize({"stripe_user_id": account_id, "client_id": "ca_other"})

    assert stripe_sandbox.get("/accounts")[0]["connected"] is True


def test_deny_redirects_with_access_denied_and_the_state(stripe_sandbox):
    location = authorize(stripe_sandbox, decision="deny", state="keep-me")

    assert query_of(location) == {
        "error": "access_denied",
        "error_description": "The user denied your request",
        "state": "keep-me",
    }


def test_the_consent_form_connects_an_existing_account(stripe_api, stripe_sandbox):
    account = stripe_sandbox.create_account()
    page = requests.get(authorize_url(stripe_api, state="form-flow"), timeout=5)
    form = {**hidden_fields(page.text), "account": account["id"], "decision": "approve"}

    answer = requests.post(
        f"{stripe_sandbox.base}/oauth/authorize", data=form, allow_redirects=False, timeout=5
    )
    returned = query_of(answer.headers["Location"])
    token = stripe_api.oauth.token({"grant_type": "authorization_code", "code": returned["code"]})

    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(REDIRECT_URI)
    assert returned["state"] == "form-flow"
    assert token.stripe_user_id == account["id"]


def test_the_consent_form_creates_a_new_account(stripe_api, stripe_sandbox):
    page = requests.get(authorize_url(stripe_api), timeout=5)
    form = {
        **hidden_fields(page.text),
        "account": "new",
        "business_name": "Harbourside Physiotherapy",
        "email": "billing@physio.example",
        "country": "nz",
        "decision": "approve",
    }

    answer = requests.post(
        f"{stripe_sandbox.base}/oauth/authorize", data=form, allow_redirects=False, timeout=5
    )
    token = stripe_api.oauth.token(
        {"grant_type": "authorization_code", "code": query_of(answer.headers["Location"])["code"]}
    )
    account = stripe_api.v1.accounts.retrieve(token.stripe_user_id)

    assert account.business_profile.name == "Harbourside Physiotherapy"
    assert account.settings.dashboard.display_name == "Harbourside Physiotherapy"
    assert (account.email, account.country, account.default_currency) == (
        "billing@physio.example",
        "NZ",
        "nzd",
    )


def test_the_consent_form_deny_button(stripe_api, stripe_sandbox):
    page = requests.get(authorize_url(stripe_api, state="no-thanks"), timeout=5)
    form = {**hidden_fields(page.text), "decision": "deny"}

    answer = requests.post(
        f"{stripe_sandbox.base}/oauth/authorize", data=form, allow_redirects=False, timeout=5
    )

    assert answer.status_code == 302
    assert query_of(answer.headers["Location"])["error"] == "access_denied"
    assert query_of(answer.headers["Location"])["state"] == "no-thanks"


def test_the_consent_form_asks_again_without_a_choice(stripe_api, stripe_sandbox):
    page = requests.get(authorize_url(stripe_api), timeout=5)
    form = {**hidden_fields(page.text), "account": "new", "decision": "approve"}

    answer = requests.post(f"{stripe_sandbox.base}/oauth/authorize", data=form, timeout=5)

    assert answer.status_code == 400
    assert "A business name is needed." in answer.text
    assert "Connect my Stripe account" in answer.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"client_id": "ca_unknown"}, "No application matches"),
        ({"scope": "read_only"}, "Only Extensions may use the read_only scope"),
        ({"response_type": "token"}, "Invalid response_type"),
        ({"redirect_uri": "javascript:alert(1)"}, "must be an http(s) URL"),
    ],
)
def test_invalid_authorization_requests_show_an_error(stripe_sandbox, change, message):
    params = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "scope": "read_write",
        "redirect_uri": REDIRECT_URI,
        **change,
    }

    page = requests.get(f"{stripe_sandbox.base}/oauth/authorize", params=params, timeout=5)

    assert page.status_code == 400
    assert message in page.text


def test_registered_redirect_uris_must_match_and_the_first_is_the_default(other_stripe_standin):
    registered = ("https://vcpay.example/stripe/callback", "http://localhost:5000/cb")
    url = other_stripe_standin(redirect_uris=registered)
    base = {"client_id": CLIENT_ID, "response_type": "code", "scope": "read_write"}

    unregistered = requests.get(
        f"{url}/oauth/authorize",
        params={**base, "redirect_uri": "https://evil.example/cb"},
        timeout=5,
    )
    second = requests.get(
        f"{url}/oauth/authorize", params={**base, "redirect_uri": registered[1]}, timeout=5
    )
    omitted = requests.get(f"{url}/oauth/authorize", params=base, timeout=5)

    assert unregistered.status_code == 400
    assert "exactly matches one of the uris" in unregistered.text
    assert second.status_code == 200
    assert hidden_fields(omitted.text)["redirect_uri"] == registered[0]
