"""Serving the stand-in over real HTTP, threaded, in a background thread or in the foreground."""

import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sandbox.jira.app import create_jira_standin


class QuietRequestHandler(WSGIRequestHandler):
    """No access log: tests read ``/_sandbox/calls`` instead."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def serve_in_background(
    app: Flask, host: str = "127.0.0.1", port: int = 0, quiet: bool = True
) -> tuple[str, BaseWSGIServer]:
    """Start serving ``app``; port 0 picks a free port. Returns the base URL and the server."""
    handler = QuietRequestHandler if quiet else WSGIRequestHandler
    server = make_server(host, port, app, threaded=True, request_handler=handler)
    thread = threading.Thread(target=server.serve_forever, name="jira-standin", daemon=True)
    thread.start()
    return f"http://{host}:{server.server_port}", server


def start_jira_standin(
    config: Mapping[str, Any] | None = None, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, BaseWSGIServer]:
    return serve_in_background(create_jira_standin(config), host, port)


def stop_jira_standin(server: BaseWSGIServer) -> None:
    server.shutdown()
    server.server_close()
