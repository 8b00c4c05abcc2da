"""The test accounts' Dashboard: edits announce account.updated, Disconnect deauthorizes."""

import pytest
import requests
import stripe

from tests.sandbox.stripe_helpers import connect


def edit_form(**changes: str) -> dict[str, str]:
    form = {
        "business_name": "Harbourside GP Clinic",
        "email": "accounts@harbourside.example",
        "charges_enabled": "on",
        "payouts_enabled": "on",
        "details_submitted": "on",
        "currently_due": "",
        "disabled_reason": "",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_the_account_list_links_each_account(stripe_api, stripe_sandbox):
    connected = connect(stripe_sandbox, stripe_api)
    other = stripe_sandbox.create_account(business_name="Harbourside Physiotherapy")["id"]

    page = requests.get(f"{stripe_sandbox.base}/", timeout=5)

    assert page.status_code == 200
    assert f'href="/dashboard/{connected}"' in page.text
    assert f'href="/dashboard/{other}"' in page.text
    assert "Harbourside Physiotherapy" in page.text
    assert "Local test stand-in for Stripe" in page.text


def test_the_account_page_has_the_edit_form(stripe_api, stripe_sandbox):
    account_id = connect(stripe_sandbox, stripe_api)

    page = requests.get(f"{stripe_sandbox.base}/dashboard/{account_id}", timeout=5).text

    for text in (
        ">Save account</button>",
        ">Disconnect vcpay</button>",
        ">Charges enabled</label>",
        ">Payouts enabled</label>",
        ">Business name</label>",
        ">Email</label>",
        ">Requirements currently due</label>",
        ">Disabled reason</label>",
        "account.application.authorized",
    ):
        assert text in page


def test_save_emits_account_updated_with_previous_attributes(
    stripe_api, stripe_sandbox, webhook_receiver
):
    account_id = connect(stripe_sandbox, stripe_api)
    form = edit_form(
        charges_enabled=None,
        currently_due="external_account, business_profile.url",
        disabled_reason="requirements.past_due",
    )

    saved = requests.post(f"{stripe_sandbox.base}/dashboard/{account_id}", data=form, timeout=5)
    stripe_sandbox.wait_for_webhooks()

    assert saved.status_code == 200 and saved.history[0].status_code == 303
    assert "Account saved. Stripe sent account.updated." in saved.text
    event = webhook_receiver.wait_for(2)[1]["event"]
    assert event["type"] == "account.updated" and event["account"] == account_id
    account = event["data"]["object"]
    assert account["charges_enabled"] is False
    assert account["requirements"]["currently_due"] == ["external_account", "business_profile.url"]
    previous = event["data"]["previous_attributes"]
    assert previous["charges_enabled"] is True
    assert previous["requirements"] == {
        "currently_due": [],
        "disabled_reason": None,
        "eventually_due": [],
    }
    assert stripe_api.v1.accounts.retrieve(account_id).charges_enabled is False


def test_saving_nothing_new_emits_nothing(stripe_api, stripe_sandbox):
    account_id = stripe_sandbox.create_account(
        business_name="Harbourside GP Clinic", email="accounts@harbourside.example"
    )["id"]

    saved = requests.post(
        f"{stripe_sandbox.base}/dashboard/{account_id}", data=edit_form(), timeout=5
    )

    assert "Nothing changed." in saved.text
    assert stripe_sandbox.events(account=account_id) == []


def test_disconnect_emits_deauthorized(stripe_api, stripe_sandbox, webhook_receiver):
    account_id = connect(stripe_sandbox, stripe_api)

    page = requests.post(f"{stripe_sandbox.base}/dashboard/{account_id}/disconnect", timeout=5)
    stripe_sandbox.wait_for_webhooks()

    assert "Disconnected vcpay." in page.text
    assert "Disconnect vcpay</button>" not in page.text
    event = webhook_receiver.wait_for(2)[1]["event"]
    assert event["type"] == "account.application.deauthorized"
    assert event["account"] == account_id
    assert event["data"]["object"]["object"] == "application"
    with pytest.raises(stripe.PermissionError):
        stripe_api.v1.accounts.retrieve(account_id)


def test_create_a_test_account_from_the_list(stripe_sandbox):
    page = requests.post(
        f"{stripe_sandbox.base}/dashboard/accounts",
        data={"business_name": "Harbourside Dental", "email": "", "country": "AU"},
        timeout=5,
    )

    assert "Created test account Harbourside Dental" in page.text
    assert [a["business_profile"]["name"] for a in stripe_sandbox.get("/accounts")] == [
        "Harbourside Dental"
    ]


def test_an_unknown_account_page_is_404(stripe_sandbox):
    assert requests.get(f"{stripe_sandbox.base}/dashboard/acct_nope", timeout=5).status_code == 404
