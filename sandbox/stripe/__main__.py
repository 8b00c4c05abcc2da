"""Run the stand-in as its own process:

    python -m sandbox.stripe --host 127.0.0.1 --port 5083 --state-file PATH \
        --public-url URL --redirect-uri URL --webhook-url URL --demo-accounts \
        --payout-seconds SECONDS
"""

import argparse
import os
import sys

from sandbox.common.server import new_server, serve_until_stopped
from sandbox.stripe.app import create_stripe_standin
from sandbox.stripe.runtime import EXTENSION
from sandbox.stripe.settings import StripeStandinSettings

DEFAULTS = StripeStandinSettings()


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.stripe",
        description="A local stand-in for Stripe's API and Connect OAuth, with webhooks.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5083)
    parser.add_argument("--public-url", default="", help="the base URL links should use")
    parser.add_argument("--state-file", help="keep accounts and events in this JSON file")
    # Secrets default to vcpay's own settings in the environment, so that the command
    # line, which other users of the machine can see, never has to carry them.
    parser.add_argument(
        "--secret-key",
        default=os.environ.get("VCPAY_STRIPE_SECRET_KEY") or DEFAULTS.secret_key,
        help="the platform's key (default: $VCPAY_STRIPE_SECRET_KEY)",
    )
    parser.add_argument("--client-id", default=DEFAULTS.client_id, help="the Connect client id")
    parser.add_argument("--platform-name", default=DEFAULTS.platform_name)
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="a registered OAuth redirect URI (repeatable; none accepts any http(s) URI)",
    )
    parser.add_argument("--webhook-url", default="", help="the Connect webhook endpoint")
    parser.add_argument(
        "--webhook-secret",
        default=os.environ.get("VCPAY_STRIPE_WEBHOOK_SECRET") or DEFAULTS.webhook_secret,
        help="the endpoint's signing secret (default: $VCPAY_STRIPE_WEBHOOK_SECRET)",
    )
    parser.add_argument(
        "--demo-accounts",
        action="store_true",
        help="create two clinics' test accounts when the state is empty",
    )
    parser.add_argument(
        "--payout-seconds",
        type=float,
        default=float(os.environ.get("STRIPE_STANDIN_PAYOUT_SECONDS") or 0),
        help="pay out every account's balance on this interval; 0, the default, never "
        "(default: $STRIPE_STANDIN_PAYOUT_SECONDS)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    app = create_stripe_standin(
        {
            "public_url": arguments.public_url,
            "state_file": arguments.state_file,
            "secret_key": arguments.secret_key,
            "client_id": arguments.client_id,
            "platform_name": arguments.platform_name,
            "redirect_uris": tuple(arguments.redirect_uri),
            "webhook_url": arguments.webhook_url,
            "webhook_secret": arguments.webhook_secret,
            "demo_accounts": arguments.demo_accounts,
            "payout_seconds": arguments.payout_seconds,
        }
    )
    server = new_server(app, arguments.host, arguments.port, quiet=True)
    url = arguments.public_url or f"http://{arguments.host}:{server.server_port}"
    # Keys and secrets stay out of the output (and the access log, with its OAuth codes, off).
    print(f"Stripe stand-in on {url}; test accounts' dashboard at {url}/", flush=True)
    try:
        serve_until_stopped(server)
    finally:
        app.extensions[EXTENSION].close()


if __name__ == "__main__":
    sys.exit(main())
