"""Serving the Jira stand-in over real HTTP in a background thread, for tests and benchmarks."""

from collections.abc import Mapping
from typing import Any

from werkzeug.serving import BaseWSGIServer

from sandbox.common.server import serve_in_background, stop_serving
from sandbox.jira.app import create_jira_standin


def start_jira_standin(
    config: Mapping[str, Any] | None = None, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, BaseWSGIServer]:
    """A fresh stand-in; ``config`` holds ``StandinSettings`` fields. Port 0 picks a free
    port. Returns the base URL and the server."""
    return serve_in_background(create_jira_standin(config), host, port, name="jira-standin")


def stop_jira_standin(server: BaseWSGIServer) -> None:
    stop_serving(server)
