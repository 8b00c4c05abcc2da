"""Serving a WSGI app over real HTTP: threaded, in a background thread (tests, benchmarks,
the mail catcher's page) or in the foreground until SIGINT or SIGTERM (``python -m``)."""

import signal
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

WSGIApp = Callable[..., Any]


class QuietRequestHandler(WSGIRequestHandler):
    """No access log: it would show OAuth codes, and tests read ``/_sandbox/calls``."""

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def new_server(
    app: WSGIApp, host: str = "127.0.0.1", port: int = 0, quiet: bool = True
) -> BaseWSGIServer:
    """A threaded server for ``app``, bound but not yet serving; port 0 picks a free port."""
    handler = QuietRequestHandler if quiet else WSGIRequestHandler
    return make_server(host, port, app, threaded=True, request_handler=handler)


def serve_in_background(
    app: WSGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    quiet: bool = True,
    name: str = "standin",
    poll_interval: float = 0.5,
) -> tuple[str, BaseWSGIServer]:
    """Start serving ``app`` in a daemon thread. Returns the base URL and the server, which
    ``stop_serving`` stops. A short ``poll_interval`` makes stopping quick."""
    server = new_server(app, host, port, quiet)
    thread = threading.Thread(
        target=server.serve_forever, args=(poll_interval,), name=name, daemon=True
    )
    thread.start()
    return base_url(host, server.server_port), server


def stop_serving(server: BaseWSGIServer) -> None:
    """Stop the serving thread and close the socket."""
    server.shutdown()
    server.server_close()


def _stop(_signal_number: int, _frame: object) -> None:
    raise SystemExit(0)


def serve_until_stopped(server: BaseWSGIServer) -> None:
    """Serve in this thread until SIGINT or SIGTERM, then close the socket."""
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
