"""Fixtures for the Jira stand-in: a real threaded HTTP server, the real ``jira`` library.

Other vcpay tests may import ``start_jira_standin`` and ``stop_jira_standin`` from here.
"""

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from jira import JIRA
from werkzeug.serving import BaseWSGIServer

from sandbox.jira import server as standin_server
from sandbox.jira.control_client import JiraControl
from tests.services import unavailable

INTEGRATION = ("vcpay@servicedesk.example", "sandbox-api-token")
AGENT = ("agent@servicedesk.example", "sandbox-agent-token")
REPO_ROOT = Path(__file__).resolve().parents[2]
# Beside the repository, or wherever VCPAY_CONTRACTS_DIR says (CI clones elsewhere).
CONTRACTS = Path(os.environ.get("VCPAY_CONTRACTS_DIR") or REPO_ROOT.parent / "shared" / "contracts")


def start_jira_standin(**config: Any) -> tuple[str, BaseWSGIServer]:
    """Serve a fresh stand-in on a free port in a background thread.

    ``config`` takes ``StandinSettings`` fields (``deployment_type``, ``time_zone``,
    ``state_file``, ``public_url``...). Stop it with ``stop_jira_standin(server)``.
    """
    return standin_server.start_jira_standin(config)


def stop_jira_standin(server: BaseWSGIServer) -> None:
    standin_server.stop_jira_standin(server)


def jira_client(url: str, auth: tuple[str, str] = INTEGRATION, **options: Any) -> JIRA:
    settings = {"max_retries": 0, "timeout": 5, "get_server_info": True, **options}
    return JIRA(server=url, basic_auth=auth, options={"check_update": False}, **settings)


def raise_request(
    control: JiraControl, jira: JIRA, summary: str = "Enable Payment Gateway", **fields: Any
):
    """A customer request raised as vcpay raises it, through the library; the prefetched
    issue. It is raised on behalf of a new customer unless ``raiseOnBehalfOf`` says whom."""
    on_behalf_of = fields.pop("raiseOnBehalfOf", None) or control.customer()
    return jira.create_customer_request(
        {
            "serviceDeskId": 1,
            "requestTypeId": 10,
            "requestFieldValues": {"summary": summary, "description": "Clinics: North, South"},
            "raiseOnBehalfOf": on_behalf_of,
            **fields,
        },
        prefetch=True,
    )


@pytest.fixture(scope="session")
def jira_standin():
    url, server = start_jira_standin()
    yield url
    stop_jira_standin(server)


@pytest.fixture
def standin_url(jira_standin: str) -> str:
    """The shared stand-in, reset to its seed state."""
    JiraControl(jira_standin).reset()
    return jira_standin


@pytest.fixture
def sandbox(standin_url: str) -> JiraControl:
    return JiraControl(standin_url)


@pytest.fixture
def jira(standin_url: str) -> JIRA:
    return jira_client(standin_url)


@pytest.fixture
def agent_jira(standin_url: str) -> JIRA:
    """The service-desk agent, who is the approver."""
    return jira_client(standin_url, AGENT)


@pytest.fixture
def other_standin():
    """A second stand-in for tests that need other settings; call it with the settings."""
    servers = []

    def start(**config: Any) -> str:
        url, server = start_jira_standin(**config)
        servers.append(server)
        return url

    yield start
    for server in servers:
        stop_jira_standin(server)


def contract_file(name: str, folder: Path = CONTRACTS) -> Path:
    """One of the official API schemas. Where it is absent its tests skip and say so; with
    ``VCPAY_REQUIRE_SERVICES=1`` (CI) they fail, so a contract can never pass unchecked."""
    path = folder / name
    if not path.is_file():
        unavailable(
            f"the official API schema {name} is not in {folder}: set VCPAY_CONTRACTS_DIR to "
            "the folder that holds them (../shared/contracts beside the repository)"
        )
    return path


class Contracts:
    """The official OpenAPI schemas; ``errors`` lists where a payload breaks one."""

    def __init__(self, folder: Path = CONTRACTS):
        self._specs = {
            "jsm": json.loads(
                contract_file("jira-service-management.openapi.json", folder).read_text()
            ),
            "platform": json.loads(
                contract_file("jira-platform-v3.openapi.json", folder).read_text()
            ),
        }

    def errors(self, spec: str, schema: str, payload: Any) -> list[str]:
        components = self._specs[spec]["components"]
        assert schema in components["schemas"], f"{schema} is not in the {spec} spec"
        validator = jsonschema.Draft4Validator(
            {"$ref": f"#/components/schemas/{schema}", "components": components}
        )
        return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(payload)]


@pytest.fixture(scope="session")
def contracts() -> Contracts:
    return Contracts()


# The Stripe stand-in's fixtures live beside its helpers.
from tests.sandbox.stripe_helpers import (  # noqa: E402, F401
    other_stripe_standin,
    stripe_api,
    stripe_sandbox,
    stripe_standin,
    stripe_url,
    webhook_receiver,
)
