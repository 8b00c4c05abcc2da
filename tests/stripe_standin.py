"""Driving the Stripe stand-in from tests (its controls: ``StripeControl``), and serving vcpay
over HTTP for its webhooks."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask, current_app
from sqlalchemy import select

from sandbox.common.server import serve_in_background, stop_serving
from sandbox.stripe.control_client import StripeControl
from sandbox.stripe.server import start_stripe_standin, stop_stripe_standin
from vcpay.client_payments.models import StripeLink
from vcpay.client_payments.stripe_link import live_link
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import forget_clients
from vcpay.people.models import Clinic
from vcpay.webhooks import services
from vcpay.webhooks.models import EventState, StripeEvent

WEBHOOK_SECRET = "whsec_vcpay_sandbox"


def link_clinic(control: StripeControl, clinic: Clinic, display_name: str = "") -> StripeLink:
    """The clinic's own account, connected at the stand-in and linked with charges enabled,
    as after Go to Stripe (the clinic's default if it is its first); flushed, the caller
    commits."""
    name = display_name or f"{clinic.name} Pty Ltd"
    account = control.connected_account(current_app.config["STRIPE_CLIENT_ID"], business_name=name)
    now = utcnow()
    link = StripeLink(
        clinic=clinic, account_id=account, linked_at=now, refreshed_at=now, display_name=name,
        charges_enabled=True, payouts_enabled=True, name=name,
        is_default=live_link(clinic) is None,
    )  # fmt: skip
    db.session.add(link)
    db.session.flush()
    return link


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """vcpay over real HTTP in a background thread, for the stand-in's webhooks."""
    url, server = serve_in_background(app, quiet=False, name="vcpay")
    try:
        yield url
    finally:
        stop_serving(server)


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
    control.reset()
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
