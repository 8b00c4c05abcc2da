"""Contract tests: the stand-in's account and event objects against Stripe's own sample
objects (``../shared/contracts/stripe-fixtures3.json``, from github.com/stripe/openapi) and
the resource classes of stripe 16.1.0.

The fixtures are samples, not schemas: an object must carry the fixture's field names, with
the same JSON type wherever the fixture's value is not null, the same ``object`` value and id
prefix. Fields the stand-in adds or leaves out are listed below, each with its reason.
"""

import json
from typing import Any

import pytest
import stripe

from tests.sandbox.conftest import contract_file
from tests.sandbox.stripe_helpers import connect

# Paths are dotted; "[]" stands for "each element".
ACCOUNT_ADDITIONS = {
    "controller.is_controller": "Stripe adds it when a platform reads a connected account; "
    "the fixture is an account reading itself",
}
ACCOUNT_OMISSIONS: dict[str, str] = {}
EVENT_ADDITIONS = {
    "account": "set on every connected-account event; the fixture is a platform event",
    "data.previous_attributes": "sent with *.updated events; the fixture is a *.created event",
}
EVENT_OMISSIONS: dict[str, str] = {}
# The fixture event wraps a plan; the stand-in's wrap accounts and applications.
EVENT_NOT_COMPARED = ("data.object",)


@pytest.fixture(scope="module")
def fixtures() -> dict[str, Any]:
    return json.loads(contract_file("stripe-fixtures3.json").read_text())["resources"]


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def differences(
    expected: Any,
    actual: Any,
    path: str = "",
    additions: dict[str, str] | None = None,
    omissions: dict[str, str] | None = None,
    skipped: tuple[str, ...] = (),
) -> list[str]:
    """Where ``actual`` departs from the sample ``expected``, apart from the listed fields."""
    additions, omissions = additions or {}, omissions or {}
    if path in skipped or expected is None:
        return []
    if json_type(expected) != json_type(actual):
        return [f"{path or '<root>'}: {json_type(actual)} where Stripe has {json_type(expected)}"]
    found = []
    if isinstance(expected, dict):
        for key in expected.keys() | actual.keys():
            child = f"{path}.{key}" if path else key
            if key not in actual:
                if child not in omissions:
                    found.append(f"{child}: missing")
            elif key not in expected:
                if child not in additions:
                    found.append(f"{child}: not in Stripe's sample")
            else:
                found += differences(
                    expected[key], actual[key], child, additions, omissions, skipped
                )
    elif isinstance(expected, list) and expected and actual:
        for item in actual:
            found += differences(expected[0], item, f"{path}[]", additions, omissions, skipped)
    return found


def stand_in_objects(stripe_api, stripe_sandbox) -> tuple[dict, dict, dict]:
    # Fields Stripe may leave null are filled, so their types can be compared.
    created = stripe_sandbox.create_account(
        email="accounts@clinic.example",
        currently_due=["external_account"],
        disabled_reason="requirements.past_due",
    )
    account_id = connect(stripe_sandbox, stripe_api, created["id"])
    stripe_sandbox.post(f"/accounts/{account_id}", {"charges_enabled": False})
    account = stripe_api.v1.accounts.retrieve(account_id).to_dict()
    updated, authorized = [
        e.to_dict() for e in stripe_api.v1.events.list(options={"stripe_account": account_id})
    ]
    return account, updated, authorized


def test_account_matches_stripes_sample(fixtures, stripe_api, stripe_sandbox):
    account, _, _ = stand_in_objects(stripe_api, stripe_sandbox)
    sample = fixtures["account"]

    assert (
        differences(sample, account, additions=ACCOUNT_ADDITIONS, omissions=ACCOUNT_OMISSIONS) == []
    )
    assert account["object"] == sample["object"]
    assert account["id"].startswith("acct_") and len(account["id"]) == len(sample["id"])
    assert set(account) <= set(stripe.Account.__annotations__)
    assert set(account["controller"]) <= set(stripe.Account.Controller.__annotations__)


def test_events_match_stripes_sample(fixtures, stripe_api, stripe_sandbox):
    _, updated, authorized = stand_in_objects(stripe_api, stripe_sandbox)
    sample = fixtures["event"]

    for event in (updated, authorized):
        assert differences(
            sample, event, additions=EVENT_ADDITIONS, omissions=EVENT_OMISSIONS,
            skipped=EVENT_NOT_COMPARED,
        ) == []  # fmt: skip
        assert event["object"] == sample["object"]
        assert event["id"].startswith("evt_")
        assert event["api_version"] == stripe.api_version
        assert set(event) <= set(stripe.Event.__annotations__)
    assert (
        differences(fixtures["account"], updated["data"]["object"], additions=ACCOUNT_ADDITIONS)
        == []
    )
    assert set(authorized["data"]["object"]) == set(fixtures["application"])


def test_the_comparison_notices_a_departure(fixtures):
    broken = json.loads(json.dumps(fixtures["account"]))
    broken["charges_enabled"] = "yes"
    del broken["email"]
    broken["colour"] = "blue"

    assert sorted(differences(fixtures["account"], broken)) == [
        "charges_enabled: string where Stripe has boolean",
        "colour: not in Stripe's sample",
        "email: missing",
    ]
