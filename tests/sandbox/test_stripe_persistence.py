"""The state file keeps accounts, connections and events across restarts; the stand-in also
runs as its own process."""

import json
import socket
import subprocess
import sys
import time

import pytest
import requests
import stripe

from sandbox.stripe.control_client import StripeControl
from tests.sandbox.conftest import REPO_ROOT
from tests.sandbox.stripe_helpers import (
    authorize,
    connect,
    start_stripe_standin,
    stop_stripe_standin,
    stripe_client,
)


def test_state_survives_a_restart(other_stripe_standin, tmp_path):
    state_file = tmp_path / "demo" / "stripe-state.json"
    first_url, first_server = start_stripe_standin(state_file=str(state_file))
    first = stripe_client(first_url)
    sandbox = StripeControl(first_url)
    kept = connect(sandbox, first, sandbox.create_account(business_name="Kept Clinic")["id"])
    revoked = connect(sandbox, first)
    first.oauth.deauthorize({"stripe_user_id": revoked})
    first.v1.accounts.update(kept, {"metadata": {"clinic": "9"}})
    events_before = [e.id for e in first.v1.events.list(options={"stripe_account": kept}).data]
    stop_stripe_standin(first_server)

    second_url = other_stripe_standin(state_file=str(state_file))
    second = stripe_client(second_url)
    account = second.v1.accounts.retrieve(kept)
    events_after = [e.id for e in second.v1.events.list(options={"stripe_account": kept}).data]

    assert account.business_profile.name == "Kept Clinic"
    assert account.metadata.to_dict() == {"clinic": "9"}
    assert events_after == events_before and len(events_after) == 2
    with pytest.raises(stripe.PermissionError):
        second.v1.accounts.retrieve(revoked)
    assert {a["id"]: a["connected"] for a in StripeControl(second_url).get("/accounts")} == {
        kept: True,
        revoked: False,
    }
    assert [p.name for p in state_file.parent.iterdir()] == ["stripe-state.json"]
    assert "sk_test_vcpay_sandbox" not in state_file.read_text()


def test_reset_empties_the_state_file(other_stripe_standin, tmp_path):
    state_file = tmp_path / "stripe-state.json"
    url = other_stripe_standin(state_file=str(state_file))
    StripeControl(url).create_account()

    StripeControl(url).post("/reset")

    assert json.loads(state_file.read_text())["accounts"] == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_runs_as_a_process_with_demo_accounts(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secret_key = "sk_test_cli_platform_key_0042"
    command = [
        sys.executable, "-m", "sandbox.stripe", "--host", "127.0.0.1", "--port", str(port),
        "--state-file", str(tmp_path / "state.json"), "--secret-key", secret_key,
        "--client-id", "ca_cli_platform", "--webhook-secret", "whsec_cli_secret_0042",
        "--redirect-uri", "http://localhost:5000/stripe/callback", "--demo-accounts",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                accounts = requests.get(f"{url}/_sandbox/accounts", timeout=1).json()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the stand-in did not start"
                time.sleep(0.1)
        client = stripe.StripeClient(
            secret_key, client_id="ca_cli_platform", base_addresses={"api": url, "connect": url}
        )
        location = authorize(StripeControl(url), account=accounts[0]["id"], redirect_uri=None)
        code = location.split("code=")[1].split("&")[0]
        token = client.oauth.token({"grant_type": "authorization_code", "code": code})
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)

    assert [a["business_profile"]["name"] for a in accounts] == [
        "Harbourside GP Clinic Pty Ltd",
        "Harbourside Physiotherapy",
    ]
    assert location.startswith("http://localhost:5000/stripe/callback?")
    assert token.stripe_user_id == accounts[0]["id"]
    assert process.returncode == 0
    assert output.splitlines()[0].startswith(f"Stripe stand-in on {url}")
    assert secret_key not in output and "whsec_cli_secret_0042" not in output
