"""Serving the Stripe stand-in over real HTTP in a background thread, for tests and
benchmarks."""

from collections.abc import Mapping
from typing import Any

from werkzeug.serving import BaseWSGIServer

from sandbox.common.server import serve_in_background, stop_serving
from sandbox.stripe.app import create_stripe_standin
from sandbox.stripe.runtime import EXTENSION


def start_stripe_standin(
    config: Mapping[str, Any] | None = None, host: str = "127.0.0.1", port: int = 0
) -> tuple[str, BaseWSGIServer]:
    """A fresh stand-in on a free port; ``config`` holds ``StripeStandinSettings`` fields.
    The URL (no trailing slash) is both the api and the connect base."""
    return serve_in_background(create_stripe_standin(config), host, port, name="stripe-standin")


def stop_stripe_standin(server: BaseWSGIServer) -> None:
    """Stop serving, and stop the webhook sender thread and the stand-in's clock."""
    stop_serving(server)
    server.app.extensions[EXTENSION].close()
