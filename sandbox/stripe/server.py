"""Serving the stand-in over real HTTP, threaded, in a background thread."""

import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from sandbox.stripe.app import create_stripe_standin
from sandbox.stripe.runtime import EXTENSION


class QuietRequestHandler(WSGIRequestHandler):
    """No access log: it would show OAuth codes, and tests read ``/_sandbox/calls``."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def serve_in_background(
    app: Flask, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, BaseWSGIServer]:
    """Start serving ``app``; port 0 picks a free port. Returns the base URL and the server."""
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="stripe-standin", daemon=True)
    thread.start()
    return f"http://{host}:{server.server_port}", server


def start_stripe_standin(
    config: Mapping[str, Any] | None = None, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, BaseWSGIServer]:
    """A fresh stand-in on a free port; ``config`` holds ``StripeStandinSettings`` fields.
    The URL (no trailing slash) is both the api and the connect base."""
    return serve_in_background(create_stripe_standin(config), host, port)


def stop_stripe_standin(server: BaseWSGIServer) -> None:
    """Stop serving, and stop the webhook sender thread."""
    server.shutdown()
    server.server_close()
    server.app.extensions[EXTENSION].close()
