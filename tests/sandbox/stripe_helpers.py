"""Helpers for the Stripe stand-in's tests: a real threaded server, the real ``stripe``
library pointed at it, the ``/_sandbox`` controls, and a webhook receiver to deliver to.

The controls themselves are ``sandbox.stripe.control_client.StripeControl``, shared with the
product's tests and the benchmarks; ``connect`` adds the library's own code exchange. Other
vcpay tests may import ``start_stripe_standin``, ``stop_stripe_standin``, ``stripe_client``,
``WebhookReceiver``, ``checkout_params`` and ``card_form`` from here.
"""

import json
import threading
import time
from typing import Any

import pytest
import stripe
from werkzeug.serving import BaseWSGIServer
from werkzeug.wrappers import Request, Response

from sandbox.common.server import serve_in_background, stop_serving
from sandbox.stripe import server as standin_server
from sandbox.stripe.control_client import StripeControl, query_of

PLATFORM_KEY = "sk_test_vcpay_sandbox"
CLIENT_ID = "ca_vcpay_sandbox"
WEBHOOK_SECRET = "whsec_vcpay_sandbox"
REDIRECT_URI = "http://127.0.0.1:9/stripe/callback"  # never followed: tests read the redirect
# Short retries keep webhook tests quick.
FAST_WEBHOOKS = {"webhook_retry_seconds": (0.2, 0.5), "webhook_timeout_seconds": 2.0}
VISA = "4242424242424242"
SUCCESS_URL = "http://127.0.0.1:9/payments/12/done?session_id={CHECKOUT_SESSION_ID}"
CANCEL_URL = "http://127.0.0.1:9/payments/12/cancelled"


def start_stripe_standin(**config: Any) -> tuple[str, BaseWSGIServer]:
    """A fresh stand-in on a free port; ``config`` takes ``StripeStandinSettings`` fields."""
    return standin_server.start_stripe_standin(config)


def stop_stripe_standin(server: BaseWSGIServer) -> None:
    standin_server.stop_stripe_standin(server)


def stripe_client(url: str, key: str = PLATFORM_KEY, retries: int = 0) -> stripe.StripeClient:
    """The client as vcpay builds it: one base for api and connect, explicit retries."""
    return stripe.StripeClient(
        key,
        client_id=CLIENT_ID,
        base_addresses={"api": url, "connect": url},
        max_network_retries=retries,
    )


def authorize(control: StripeControl, **body: Any) -> str:
    """The redirect the consent screen would send the browser to."""
    return control.authorize(**{"redirect_uri": REDIRECT_URI, "state": "state-1", **body})


def code_for(control: StripeControl, account_id: str) -> str:
    return query_of(authorize(control, account=account_id))["code"]


def connect(
    control: StripeControl, client: stripe.StripeClient, account_id: str | None = None
) -> str:
    """A test account connected through the library's own code exchange; its id."""
    account_id = account_id or control.create_account(business_name="Harbourside GP Clinic")["id"]
    code = code_for(control, account_id)
    return client.oauth.token({"grant_type": "authorization_code", "code": code}).stripe_user_id


def at_the_start_of_a_second() -> int:
    """Now, just after the clock ticks: a call made at once reaches the stand-in within the
    same second, so a limit Stripe measures in whole seconds can be hit exactly."""
    while time.time() % 1 > 0.2:
        time.sleep(0.05)
    return int(time.time())


def checkout_params(**overrides: Any) -> dict[str, Any]:
    """A Checkout Session as vcpay asks for one: A$85.00 for a consultation."""
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": "aud",
                    "unit_amount": 8500,
                    "product_data": {"name": "Consultation"},
                },
            }
        ],
        "payment_intent_data": {
            "description": "Telehealth consultation with Dr Lee",
            "metadata": {"payment_request_id": "12", "clinic_id": "3", "call_id": "7"},
        },
        "metadata": {"payment_request_id": "12"},
        "client_reference_id": "payreq_12",
        "success_url": SUCCESS_URL,
        "cancel_url": CANCEL_URL,
        "expires_at": int(time.time()) + 30 * 60 + 5,
    }
    params.update(overrides)
    return params


def card_form(card: str = "4242 4242 4242 4242", **fields: str) -> dict[str, str]:
    """The pay page's form, filled in."""
    return {
        "email": "patient@example.com",
        "cardnumber": card,
        "expiry": f"12 / {(time.gmtime().tm_year + 3) % 100:02d}",
        "cvc": "123",
        "name": "Pat Citizen",
        **fields,
    }


class WebhookReceiver:
    """A tiny endpoint that records each delivery and answers with the next planned status
    (200 once the plan runs out)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.planned_statuses: list[int] = []
        self._lock = threading.Condition()
        base, self._server = serve_in_background(
            self._app, quiet=False, name="webhook-receiver", poll_interval=0.05
        )
        self.url = f"{base}/webhooks/stripe"

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data(as_text=True)
        with self._lock:
            status = self.planned_statuses.pop(0) if self.planned_statuses else 200
            self.received.append(
                {
                    "body": body,
                    "event": json.loads(body),
                    "signature": request.headers.get("Stripe-Signature"),
                    "headers": dict(request.headers),
                    "content_type": request.headers.get("Content-Type"),
                    "status": status,
                    "at": time.monotonic(),
                }
            )
            self._lock.notify_all()
        return Response("", status=status)(environ, start_response)

    def answer_with(self, *statuses: int) -> None:
        with self._lock:
            self.planned_statuses.extend(statuses)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"expected {count} deliveries, got {len(self.received)}"
                self._lock.wait(remaining)
            return list(self.received)

    def event_types(self) -> list[str]:
        with self._lock:
            return [r["event"]["type"] for r in self.received]

    def stop(self) -> None:
        stop_serving(self._server)


# -- fixtures (conftest.py imports them) -----------------------------------------------------


@pytest.fixture(scope="session")
def stripe_standin():
    url, server = start_stripe_standin(**FAST_WEBHOOKS)
    yield url
    stop_stripe_standin(server)


@pytest.fixture
def stripe_url(stripe_standin: str) -> str:
    """The shared stand-in, emptied."""
    StripeControl(stripe_standin).reset()
    return stripe_standin


@pytest.fixture
def stripe_sandbox(stripe_url: str) -> StripeControl:
    return StripeControl(stripe_url)


@pytest.fixture
def stripe_api(stripe_url: str) -> stripe.StripeClient:
    return stripe_client(stripe_url)


@pytest.fixture
def webhook_receiver(stripe_sandbox: StripeControl):
    """A receiver the stand-in delivers to."""
    receiver = WebhookReceiver()
    stripe_sandbox.send_webhooks_to(receiver.url)
    yield receiver
    stripe_sandbox.reset()
    receiver.stop()


@pytest.fixture
def other_stripe_standin():
    """A second stand-in for tests that need other settings; call it with the settings."""
    servers = []

    def start(**config: Any) -> str:
        url, server = start_stripe_standin(**{**FAST_WEBHOOKS, **config})
        servers.append(server)
        return url

    yield start
    for server in servers:
        stop_stripe_standin(server)
