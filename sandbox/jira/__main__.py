"""Run the stand-in as its own process:

    python -m sandbox.jira --host 127.0.0.1 --port 5081 --state-file PATH \
        --public-url URL --deployment-type Cloud --webhook-url URL
"""

import argparse
import os
import sys

from sandbox.common.server import new_server, serve_until_stopped
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
    # Its access log shows each call, as Jira's own would; no secret travels in a Jira URL.
    server = new_server(app, arguments.host, arguments.port, quiet=False)
    url = arguments.public_url or f"http://{arguments.host}:{server.server_port}"
    print(f"Jira stand-in ({arguments.deployment_type}) on {url}; agent page at {url}/", flush=True)
    serve_until_stopped(server)


if __name__ == "__main__":
    sys.exit(main())
