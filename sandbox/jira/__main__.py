"""Run the stand-in as its own process:

    python -m sandbox.jira --host 127.0.0.1 --port 5081 --state-file PATH \
        --public-url URL --deployment-type Cloud --webhook-url URL
"""

import argparse
import os
import signal
import sys

from werkzeug.serving import make_server

from sandbox.jira.app import create_jira_standin
from sandbox.jira.settings import DEPLOYMENT_TYPES, SANDBOX_WEBHOOK_SECRET


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.jira",
        description="A local stand-in for Jira Cloud and Jira Service Management.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5081)
    parser.add_argument("--state-file", help="keep requests in this JSON file across restarts")
    parser.add_argument("--public-url", default="", help="the base URL links should use")
    parser.add_argument("--deployment-type", choices=DEPLOYMENT_TYPES, default="Cloud")
    parser.add_argument("--time-zone", default="Australia/Sydney", help="the users' time zone")
    parser.add_argument("--webhook-url", default="", help="send an admin webhook here")
    # From vcpay's own setting in the environment: the command line never carries a secret.
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("VCPAY_JIRA_WEBHOOK_SECRET") or SANDBOX_WEBHOOK_SECRET,
        help="the webhook's signing secret (default: $VCPAY_JIRA_WEBHOOK_SECRET)",
    )
    return parser.parse_args(argv)


def _stop(_signal_number: int, _frame: object) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    app = create_jira_standin(
        {
            "public_url": arguments.public_url,
            "deployment_type": arguments.deployment_type,
            "time_zone": arguments.time_zone,
            "state_file": arguments.state_file,
            "webhook_url": arguments.webhook_url,
            "webhook_secret": arguments.webhook_secret,
        }
    )
    server = make_server(arguments.host, arguments.port, app, threaded=True)
    signal.signal(signal.SIGTERM, _stop)
    url = arguments.public_url or f"http://{arguments.host}:{server.server_port}"
    print(f"Jira stand-in ({arguments.deployment_type}) on {url}; agent page at {url}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
