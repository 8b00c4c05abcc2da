"""The state file keeps requests across restarts; the stand-in also runs as its own process."""

import json
import socket
import subprocess
import sys
import time

import pytest
import requests
from jira import JIRAError

from sandbox.jira.control_client import JiraControl
from tests.sandbox.conftest import (
    AGENT,
    INTEGRATION,
    REPO_ROOT,
    jira_client,
    raise_request,
    start_jira_standin,
    stop_jira_standin,
)


def test_state_survives_a_restart(other_standin, tmp_path):
    state_file = tmp_path / "demo" / "jira-state.json"
    first_url, first_server = start_jira_standin(state_file=str(state_file))
    first = jira_client(first_url)
    sandbox = JiraControl(first_url)
    customer = first.create_customer("manager@clinic.example", "Telehealth Manager").accountId
    issue = raise_request(sandbox, first, "Kept", raiseOnBehalfOf=customer)
    first.add_comment(issue.key, "internal note", is_internal=True)
    sandbox.post(f"/requests/{issue.key}/decide", {"decision": "decline", "comment": "No"})
    updated_before = first.issue(issue.key).fields.updated
    stop_jira_standin(first_server)

    second_url = other_standin(state_file=str(state_file))
    second = jira_client(second_url)
    reloaded = second.issue(issue.key)
    approvals = second._session.get(
        f"{second_url}/rest/servicedeskapi/request/{issue.key}/approval"
    ).json()
    with pytest.raises(JIRAError) as duplicate:
        second.create_customer("manager@clinic.example", "Again")
    next_issue = raise_request(
        JiraControl(second_url), second, "After restart", raiseOnBehalfOf=customer
    )

    assert reloaded.fields.status.name == "Declined"
    assert reloaded.fields.updated == updated_before
    assert [(c.body, c.jsdPublic) for c in second.comments(issue.key)] == [
        ("internal note", False),
        ("No", True),
    ]
    assert approvals["values"][0]["finalDecision"] == "declined"
    assert duplicate.value.status_code == 400
    assert (next_issue.key, next_issue.id) == ("PAY-2", "10002")
    assert json.loads(state_file.read_text())["next_number"] == 3
    assert [p.name for p in state_file.parent.iterdir()] == ["jira-state.json"]


def test_reset_empties_the_state_file(other_standin, tmp_path):
    state_file = tmp_path / "jira-state.json"
    url = other_standin(state_file=str(state_file))
    JiraControl(url).post("/bulk", {"count": 2})

    JiraControl(url).post("/reset", {})

    restarted = other_standin(state_file=str(state_file))
    assert json.loads(state_file.read_text())["requests"] == []
    assert requests.get(f"{restarted}/_sandbox/requests", timeout=5).json() == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_runs_as_its_own_process(tmp_path):
    port = free_port()
    public_url = f"http://localhost:{port}"
    command = [
        sys.executable, "-m", "sandbox.jira", "--host", "127.0.0.1", "--port", str(port),
        "--state-file", str(tmp_path / "state.json"), "--public-url", public_url,
        "--deployment-type", "Server",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                info = requests.get(f"{url}/rest/api/2/serverInfo", timeout=1).json()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the stand-in did not start"
                time.sleep(0.1)
        desks = requests.get(f"{url}/rest/servicedeskapi/servicedesk", auth=AGENT, timeout=5).json()
        myself = requests.get(f"{url}/rest/api/2/myself", auth=INTEGRATION, timeout=5).json()
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)

    assert info["deploymentType"] == "Server"
    assert info["baseUrl"] == public_url
    assert desks["values"][0]["_links"]["self"].startswith(public_url)
    assert myself["displayName"] == "vcpay integration"
    assert process.returncode == 0
    assert f"on {public_url}" in output
