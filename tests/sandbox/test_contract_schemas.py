"""The contract tests never pass unchecked: without the official schemas they skip and say
where to point ``VCPAY_CONTRACTS_DIR``, and in CI (``VCPAY_REQUIRE_SERVICES=1``) they fail."""

import os
import subprocess
import sys

import pytest

from tests.sandbox.conftest import REPO_ROOT, contract_file

CONTRACT_TESTS = ["tests/sandbox/test_jira_contracts.py", "tests/sandbox/test_stripe_contracts.py"]


def contract_tests_with_schemas_in(folder, require_services: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "VCPAY_CONTRACTS_DIR": str(folder),
        "VCPAY_REQUIRE_SERVICES": require_services,
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsE", "-p", "no:cacheprovider", *CONTRACT_TESTS],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_in_ci_a_missing_contracts_folder_fails_and_names_the_setting(tmp_path):
    run = contract_tests_with_schemas_in(tmp_path / "absent", require_services="1")
    summary = run.stdout.strip().splitlines()[-1]
    assert run.returncode == 1, run.stdout[-3000:]
    assert "error" in summary and "skipped" not in summary and "passed" not in summary
    assert "set VCPAY_CONTRACTS_DIR" in run.stdout


def test_elsewhere_a_missing_schema_skips_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("VCPAY_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="set VCPAY_CONTRACTS_DIR") as skipped:
        contract_file("stripe-fixtures3.json", tmp_path)
    assert str(tmp_path) in str(skipped.value)


def test_a_schema_that_is_there_is_found(tmp_path):
    (tmp_path / "stripe-fixtures3.json").write_text("{}")
    assert contract_file("stripe-fixtures3.json", tmp_path) == tmp_path / "stripe-fixtures3.json"
