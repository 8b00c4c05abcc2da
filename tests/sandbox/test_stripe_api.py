"""The /v1 pipeline through the real stripe library: authentication, Stripe-Account scoping,
idempotency, errors, faults and lists; and the account objects it serves."""

import time

import pytest
import requests
import stripe

from tests.sandbox.stripe_helpers import PLATFORM_KEY, connect, stripe_client

AUTH = {"Authorization": f"Bearer {PLATFORM_KEY}"}


def test_retrieve_a_connected_account(stripe_api, stripe_sandbox):
    created = stripe_sandbox.create_account(
        business_name="Harbourside GP Clinic Pty Ltd",
        email="accounts@harbourside.example",
        charges_enabled=False,
        currently_due=["external_account"],
        disabled_reason="requirements.past_due",
    )
    account_id = connect(stripe_sandbox, stripe_api, created["id"])

    account = stripe_api.v1.accounts.retrieve(account_id)
    as_itself = stripe_api.v1.accounts.retrieve_current(options={"stripe_account": account_id})

    assert len(account_id) == len("acct_") + 16
    assert account.object == "account" and account.type == "standard"
    assert account.business_profile.name == "Harbourside GP Clinic Pty Ltd"
    assert account.settings.dashboard.display_name == "Harbourside GP Clinic Pty Ltd"
    assert account.email == "accounts@harbourside.example"
    assert (account.country, account.default_currency) == ("AU", "aud")
    assert account.charges_enabled is False and account.payouts_enabled is True
    assert account.requirements.currently_due == ["external_account"]
    assert account.requirements.disabled_reason == "requirements.past_due"
    assert account.capabilities.card_payments == "inactive"
    assert as_itself.to_dict() == account.to_dict()


def test_the_platform_sees_its_own_account_without_stripe_account(stripe_api):
    platform = stripe_api.v1.accounts.retrieve_current()

    assert platform.id.startswith("acct_")
    assert platform.business_profile.name == "vcpay"


def test_unknown_and_unconnected_accounts_are_refused_alike(stripe_api, stripe_sandbox):
    never_connected = stripe_sandbox.create_account()["id"]

    for account_id in (never_connected, "acct_doesnotexist0000"):
        with pytest.raises(stripe.PermissionError) as refused:
            stripe_api.v1.accounts.retrieve(account_id)
        with pytest.raises(stripe.PermissionError):
            stripe_api.v1.accounts.retrieve_current(options={"stripe_account": account_id})
        body = refused.value.json_body["error"]
        assert body["code"] == "account_invalid"
        assert body["type"] == "invalid_request_error"
        assert f"does not have access to account '{account_id}'" in body["message"]
        assert PLATFORM_KEY not in body["message"]


def test_events_are_scoped_by_stripe_account(stripe_api, stripe_sandbox):
    first = connect(stripe_sandbox, stripe_api)
    second = connect(stripe_sandbox, stripe_api)
    first_event = stripe_api.v1.events.list(options={"stripe_account": first}).data[0]

    platform_events = stripe_api.v1.events.list()
    with pytest.raises(stripe.InvalidRequestError) as elsewhere:
        stripe_api.v1.events.retrieve(first_event.id, options={"stripe_account": second})
    found = stripe_api.v1.events.retrieve(first_event.id, options={"stripe_account": first})

    assert platform_events.data == []
    assert elsewhere.value.http_status == 404
    assert elsewhere.value.code == "resource_missing"
    assert found.id == first_event.id and found.account == first


def test_a_wrong_or_missing_key_is_an_authentication_error(stripe_url):
    with pytest.raises(stripe.AuthenticationError) as wrong:
        stripe_client(stripe_url, key="sk_test_not_the_platform_key_9876").v1.events.list()
    missing = requests.get(f"{stripe_url}/v1/events", timeout=5)

    assert wrong.value.http_status == 401
    assert wrong.value.user_message.startswith("Invalid API Key provided: sk_test_")
    assert wrong.value.user_message.endswith("9876")
    assert "not_the_platform" not in wrong.value.http_body
    assert missing.status_code == 401
    assert missing.json()["error"]["message"].startswith("You did not provide an API key.")


def test_request_id_on_every_response(stripe_api, stripe_sandbox, stripe_url):
    account_id = connect(stripe_sandbox, stripe_api)
    answers = [
        requests.get(f"{stripe_url}/v1/accounts/{account_id}", headers=AUTH, timeout=5),
        requests.get(f"{stripe_url}/v1/accounts/acct_nope", headers=AUTH, timeout=5),
        requests.get(f"{stripe_url}/v1/events", timeout=5),
        requests.get(f"{stripe_url}/v1/nowhere", headers=AUTH, timeout=5),
        requests.post(f"{stripe_url}/oauth/token", data={"grant_type": "x"}, timeout=5),
        requests.post(f"{stripe_url}/oauth/deauthorize", headers=AUTH, timeout=5),
        requests.get(f"{stripe_url}/oauth/authorize", timeout=5),
    ]

    ids = [a.headers.get("Request-Id", "") for a in answers]
    assert all(i.startswith("req_") for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert answers[0].headers["Stripe-Version"]


def test_an_unknown_url_is_stripes_404(stripe_url):
    answer = requests.post(f"{stripe_url}/v1/charges/ch_1/nothing", headers=AUTH, timeout=5)

    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("Unrecognized request URL (POST: /v1/charges/ch_1/nothing).")


def test_unknown_parameters_are_refused_with_param(stripe_api, stripe_sandbox):
    account_id = connect(stripe_sandbox, stripe_api)

    with pytest.raises(stripe.InvalidRequestError) as get:
        stripe_api.v1.events.list({"colour": "blue"})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(stripe.InvalidRequestError) as post:
        stripe_api.v1.accounts.update(account_id, {"email": "x@y.example"})

    assert (get.value.param, get.value.http_status) == ("colour", 400)
    assert get.value.user_message == "Received unknown parameter: colour"
    assert post.value.param == "email"


def test_an_idempotent_update_replays_and_refuses_other_params(stripe_api, stripe_sandbox):
    account_id = connect(stripe_sandbox, stripe_api)
    options = {"idempotency_key": "clinic-9-link"}

    first = stripe_api.v1.accounts.update(account_id, {"metadata": {"clinic": "9"}}, options)
    again = stripe_api.v1.accounts.update(account_id, {"metadata": {"clinic": "9"}}, options)
    with pytest.raises(stripe.IdempotencyError) as different:
        stripe_api.v1.accounts.update(account_id, {"metadata": {"clinic": "10"}}, options)
    elsewhere = stripe_api.v1.accounts.update(
        account_id, {"metadata": {"clinic": "11"}}, {"idempotency_key": "clinic-9-link-2"}
    )

    assert first.metadata.to_dict() == {"clinic": "9"}
    assert again.to_dict() == first.to_dict()
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert again.last_response.request_id == first.last_response.request_id
    assert "Idempotent-Replayed" not in first.last_response.headers
    assert different.value.http_status == 400
    assert different.value.user_message == (
        "Keys for idempotent requests can only be used with the same parameters they were "
        "first used with. Try using a key other than 'clinic-9-link' if you meant to execute "
        "a different request."
    )
    assert elsewhere.metadata.to_dict() == {"clinic": "11"}
    updates = stripe_sandbox.events(account=account_id, type="account.updated")
    assert len(updates) == 2
    # Stripe reports a key that was not there before as null.
    assert updates[0]["data"]["previous_attributes"] == {"metadata": {"clinic": None}}
    assert updates[0]["request"]["idempotency_key"] == "clinic-9-link"


def test_a_refused_request_leaves_its_idempotency_key_free(stripe_api, stripe_sandbox):
    account_id = connect(stripe_sandbox, stripe_api)
    options = {"idempotency_key": "retry-me"}

    with pytest.raises(stripe.InvalidRequestError):
        stripe_api.v1.accounts.update(account_id, {"email": "no"}, options)
    updated = stripe_api.v1.accounts.update(account_id, {"metadata": {"a": "1"}}, options)

    assert updated.metadata.to_dict() == {"a": "1"}


def test_the_library_retries_an_injected_500(stripe_url, stripe_sandbox):
    retrying = stripe_client(stripe_url, retries=1)
    account_id = connect(stripe_sandbox, retrying)
    stripe_sandbox.answer("DELETE", "/calls")
    stripe_sandbox.fault(path_prefix=f"/v1/accounts/{account_id}", status=500)

    updated = retrying.v1.accounts.update(account_id, {"metadata": {"try": "1"}})

    calls = stripe_sandbox.calls()
    assert [c["status"] for c in calls] == [500, 200]
    assert calls[0]["idempotency_key"] == calls[1]["idempotency_key"]
    assert updated.metadata.to_dict() == {"try": "1"}


def test_should_retry_false_stops_the_library(stripe_url, stripe_sandbox):
    retrying = stripe_client(stripe_url, retries=2)
    stripe_sandbox.fault(path_prefix="/v1/events", status=409, should_retry=False)

    with pytest.raises(stripe.APIError) as refused:
        retrying.v1.events.list()

    assert refused.value.http_status == 409
    assert refused.value.json_body["error"]["code"] == "lock_timeout"
    assert len(stripe_sandbox.calls()) == 1


def test_rate_limits_and_latency(stripe_api, stripe_sandbox, stripe_url):
    stripe_sandbox.fault(path_prefix="/v1/events", status=429)
    stripe_sandbox.fault(path_prefix="/v1/account", latency_seconds=0.3)

    with pytest.raises(stripe.RateLimitError):
        stripe_api.v1.events.list()
    started = time.monotonic()
    stripe_api.v1.accounts.retrieve_current()

    assert time.monotonic() - started >= 0.3
    assert stripe_sandbox.get("/faults") == []


def test_events_list_pages_newest_first(stripe_api, stripe_sandbox):
    account_id = connect(stripe_sandbox, stripe_api)
    for number in range(4):
        stripe_sandbox.post(f"/accounts/{account_id}", {"business_name": f"Clinic {number}"})
    options = {"stripe_account": account_id}

    first_page = stripe_api.v1.events.list({"limit": 2}, options)
    second_page = stripe_api.v1.events.list(
        {"limit": 2, "starting_after": first_page.data[-1].id}, options
    )
    back = stripe_api.v1.events.list({"limit": 2, "ending_before": second_page.data[0].id}, options)
    every = [e.id for e in stripe_api.v1.events.list({"limit": 1}, options).auto_paging_iter()]
    names = [e.data.object.business_profile.name for e in first_page.data]

    assert names == ["Clinic 3", "Clinic 2"]
    assert first_page.has_more is True and first_page.url == "/v1/events"
    assert [e.id for e in back.data] == [e.id for e in first_page.data]
    assert len(every) == 5  # four updates and the authorization
    assert (
        every[-1]
        == stripe_api.v1.events.list({"type": "account.application.authorized"}, options).data[0].id
    )


def test_events_list_filters(stripe_api, stripe_sandbox):
    account_id = connect(stripe_sandbox, stripe_api)
    stripe_sandbox.post(f"/accounts/{account_id}", {"charges_enabled": False})
    options = {"stripe_account": account_id}

    def types(params):
        return [e.type for e in stripe_api.v1.events.list(params, options).data]

    assert types({"type": "account.updated"}) == ["account.updated"]
    assert types({"type": "account.application.*"}) == ["account.application.authorized"]
    assert types({"types": ["account.updated", "account.application.authorized"]}) == [
        "account.updated",
        "account.application.authorized",
    ]
    assert types({"created": {"gte": int(time.time()) + 60}}) == []
    assert types({"delivery_success": "false"}) == []
    with pytest.raises(stripe.InvalidRequestError) as too_many:
        stripe_api.v1.events.list({"limit": 101}, options)
    assert too_many.value.param == "limit"


def test_connected_accounts_list(stripe_api, stripe_sandbox):
    first = connect(stripe_sandbox, stripe_api)
    second = connect(stripe_sandbox, stripe_api)
    stripe_sandbox.create_account()  # not connected

    listed = stripe_api.v1.accounts.list()

    assert [a.id for a in listed.data] == [second, first]
