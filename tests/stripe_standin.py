"""Driving the Stripe stand-in from tests, and serving vcpay over HTTP for its webhooks."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask, current_app
from sqlalchemy import select
from werkzeug.serving import make_server

from sandbox.stripe.server import start_stripe_standin, stop_stripe_standin
from vcpay.client_payments.models import StripeLink
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_gateway import forget_clients
from vcpay.people.models import Clinic
from vcpay.webhooks import services
from vcpay.webhooks.models import EventState, StripeEvent

WEBHOOK_SECRET = "whsec_vcpay_sandbox"


class StripeControl:
    """The stand-in's ``/_sandbox`` controls."""

    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body: dict | None = None) -> Any:
        response = requests.request(method, f"{self.base}/_sandbox/{path}", json=body, timeout=10)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None

    def account(self, **fields: Any) -> str:
        return self.call("POST", "accounts", fields)["id"]

    def accounts(self) -> dict[str, dict]:
        return {a["id"]: a for a in self.call("GET", "accounts")}

    def update_account(self, account_id: str, **fields: Any) -> None:
        self.call("POST", f"accounts/{account_id}", fields)

    def disconnect(self, account_id: str) -> None:
        self.call("POST", f"accounts/{account_id}/disconnect")

    def consent(self, authorize_url: str, **choice: Any) -> dict[str, str]:
        """Answer Stripe's consent page as the person would; returns the redirect's query."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        body = {
            "client_id": query["client_id"],
            "redirect_uri": query["redirect_uri"],
            "state": query.get("state"),
            "scope": query.get("scope", "read_write"),
            **choice,
        }
        location = self.call("POST", "oauth/authorize", body)["location"]
        return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}

    def send_webhooks_to(self, url: str, secret: str) -> None:
        self.call("POST", "webhooks", {"url": url, "secret": secret})

    def wait_for_webhooks(self, timeout: float = 10) -> None:
        self.call("POST", "webhooks/wait", {"timeout": timeout})

    def webhook_fault(self, mode: str, count: int = 1, **extra: Any) -> None:
        self.call("POST", "webhook-faults", {"mode": mode, "count": count, **extra})

    def release_held(self, order: str = "reverse") -> None:
        self.call("POST", "webhooks/release", {"order": order})

    def fault(self, **spec: Any) -> None:
        self.call("POST", "faults", spec)

    def clear_faults(self) -> None:
        self.call("DELETE", "faults")

    def deliveries(self) -> list[dict]:
        return self.call("GET", "deliveries")

    def connected_account(self, client_id: str, **fields: Any) -> str:
        """A test account that has granted vcpay's platform access (as after Go to Stripe)."""
        account = self.account(**fields)
        answer = self.call(
            "POST",
            "oauth/authorize",
            {"client_id": client_id, "redirect_uri": "http://127.0.0.1/cb", "state": "s",
             "account": account},
        )  # fmt: skip
        code = parse_qs(urlsplit(answer["location"]).query)["code"][0]
        token = requests.post(
            f"{self.base}/oauth/token",
            data={"grant_type": "authorization_code", "code": code},
            headers={"Authorization": "Bearer sk_test_vcpay_sandbox"},
            timeout=10,
        )
        assert token.status_code == 200, token.text
        return account

    def sessions(self) -> list[dict]:
        return self.call("GET", "checkout/sessions")

    def pay(self, session_id: str, card: str = "4242424242424242", **details: Any) -> dict:
        body = {"card": card, "email": "pat@example.org", "name": "Pat Citizen", **details}
        return self.call("POST", f"checkout/sessions/{session_id}/pay", body)

    def expire_now(self, session_id: str) -> None:
        self.call("POST", f"checkout/sessions/{session_id}/expire-now")

    def settle(self, session_id: str, outcome: str) -> None:
        self.call("POST", f"checkout/sessions/{session_id}/settle", {"outcome": outcome})


def link_clinic(control: StripeControl, clinic: Clinic, display_name: str = "") -> StripeLink:
    """The clinic's own account, connected at the stand-in and linked with charges enabled,
    as after Go to Stripe; flushed, the caller commits."""
    name = display_name or f"{clinic.name} Pty Ltd"
    account = control.connected_account(current_app.config["STRIPE_CLIENT_ID"], business_name=name)
    now = utcnow()
    link = StripeLink(
        clinic=clinic, account_id=account, linked_at=now, refreshed_at=now, display_name=name,
        charges_enabled=True, payouts_enabled=True,
    )  # fmt: skip
    db.session.add(link)
    db.session.flush()
    return link


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """vcpay over real HTTP in a background thread, for the stand-in's webhooks."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def received(event_type: str | None = None) -> list[StripeEvent]:
    db.session.rollback()  # see what the server committed
    query = select(StripeEvent).order_by(StripeEvent.id)
    if event_type:
        query = query.filter_by(type=event_type)
    return list(db.session.scalars(query))


def wait_for_events(event_type: str, count: int = 1, seconds: float = 10) -> list[StripeEvent]:
    deadline = time.monotonic() + seconds
    while len(events := received(event_type)) < count:
        assert time.monotonic() < deadline, f"{count} {event_type} event(s) did not arrive"
        time.sleep(0.05)
    return events


def process_received() -> int:
    """What a worker does with each stored event; returns how many it looked at."""
    waiting = [e.id for e in received() if e.state == EventState.RECEIVED]
    for row_id in waiting:
        services.process(row_id)
    return len(waiting)


@pytest.fixture(scope="module")
def standin():
    """A Stripe stand-in of the module's own, retrying webhooks quickly."""
    url, server = start_stripe_standin({"webhook_retry_seconds": (0.2, 0.5)})
    yield url
    stop_stripe_standin(server)


@pytest.fixture
def stripe_control(app, standin):
    """The stand-in, reset, with vcpay pointed at it."""
    control = StripeControl(standin)
    control.call("POST", "reset")
    app.config.update(STRIPE_API_BASE=standin, STRIPE_MAX_NETWORK_RETRIES=0)
    forget_clients()
    yield control
    forget_clients()


@pytest.fixture
def webhooks(app, stripe_control):
    """vcpay served over HTTP, registered as the stand-in's Connect webhook endpoint."""
    with served(app) as url:
        stripe_control.send_webhooks_to(f"{url}/webhooks/stripe", WEBHOOK_SECRET)
        yield stripe_control
