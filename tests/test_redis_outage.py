"""Redis down (cut, or hanging) never turns a page into an error, and health says so.

Redis holds the rate limits, the call-event wake-ups and the Celery broker. Here the app
reaches the shared Redis only through a fault proxy, which the test cuts or pauses; the
shared server itself is never touched.
"""

import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from tests.conftest import csrf_token, sign_in
from tests.faultproxy import FaultProxy
from tests.payment_steps import ask, join, start_call
from tests.services import redis_url
from tests.stripe_standin import link_clinic
from tests.test_enablement_requests import MANAGER, new_path, request_data
from vcpay.enablement.models import EnablementRequest, RequestState
from vcpay.extensions import db
from vcpay.payments.models import PaymentRequest
from vcpay.people.demo import seed_demo

CLINICIAN = "clinician@harbourside.example"
CLINIC_ADMIN = "clinicadmin@harbourside.example"
# A person waits this long at most for any page while Redis is away.
PATIENCE_SECONDS = 3.0


@pytest.fixture
def redis_through_proxy():
    """A fault proxy in front of the shared Redis, and the URL that reaches Redis through it."""
    target = urlsplit(redis_url())
    proxy = FaultProxy(target.hostname or "127.0.0.1", target.port or 6379, "redis").start()
    yield proxy, f"redis://{proxy.address}{target.path}"
    proxy.close()


@pytest.fixture
def app_overrides(redis_through_proxy):
    """Everything Redis does for the web tier goes through the proxy."""
    _, url = redis_through_proxy
    return {"REDIS_URL": url, "CELERY_BROKER_URL": url}


@pytest.fixture
def redis_proxy(redis_through_proxy) -> FaultProxy:
    return redis_through_proxy[0]


@pytest.fixture
def gp(app, stripe_control):
    """The GP clinic with the gateway on, its Stripe account not linked yet."""
    organisation = seed_demo(enable_gateway=True)
    db.session.commit()
    return next(c for c in organisation.clinics if c.name == "Harbourside GP Clinic")


def link(clinic, stripe_control, app) -> None:
    link_clinic(stripe_control, clinic)
    db.session.commit()


class Stopwatch:
    """Each step a person takes, timed."""

    def __init__(self):
        self.slowest = ("", 0.0)

    def __call__(self, step: str, action):
        started = time.monotonic()
        result = action()
        took = time.monotonic() - started
        if took > self.slowest[1]:
            self.slowest = (step, took)
        return result


def fail(proxy: FaultProxy, how: str) -> None:
    proxy.cut() if how == "cut" else proxy.pause()


@pytest.mark.parametrize("how", ["cut", "pause"])
def test_with_redis_away_people_sign_in_start_calls_join_request_payment_and_connect(
    app, client, gp, stripe_control, redis_proxy, how
):
    admin = app.test_client()
    sign_in(admin, CLINIC_ADMIN)  # while Redis is up: the limits live there
    fail(redis_proxy, how)
    timed = Stopwatch()

    token = csrf_token(admin, f"/client-payments/clinics/{gp.id}")
    connect = timed(
        "Go to Stripe",
        lambda: admin.post(
            f"/client-payments/clinics/{gp.id}/stripe/connect", data={"csrf_token": token}
        ),
    )
    assert connect.status_code == 303
    assert connect.location.startswith(stripe_control.base)

    link(gp, stripe_control, app)
    signed_in = timed("sign in", lambda: sign_in(client, CLINICIAN))
    assert signed_in.status_code == 302
    call = timed("start a call", lambda: start_call(client, gp))
    timed("join", lambda: join(app, call, "Pat Citizen"))
    asked = timed("Request Payment", lambda: ask(client, call, "85.00", "Consultation"))
    assert asked.status_code == 303
    assert db.session.query(PaymentRequest).count() == 1
    refused = timed("a refused sign-in", lambda: sign_in(app.test_client(), CLINICIAN, "wrong"))
    assert refused.status_code == 401  # the limits still count, in this process's memory

    step, seconds = timed.slowest
    assert seconds < PATIENCE_SECONDS, f"{step} took {seconds:.1f} s with Redis {how}"


@pytest.mark.parametrize("how", ["cut", "pause"])
def test_health_names_redis_and_the_broker_when_they_are_away(client, redis_proxy, how):
    healthy = client.get("/healthz").get_json()
    assert (healthy["status"], healthy["redis"], healthy["broker"]) == ("ok", "ok", "ok")
    assert client.get("/readyz").status_code == 200

    fail(redis_proxy, how)
    started = time.monotonic()
    health = client.get("/healthz")
    ready = client.get("/readyz")
    assert time.monotonic() - started < 2 * PATIENCE_SECONDS
    # The web tier still serves: alive, degraded; not ready for a load balancer's new work.
    assert health.status_code == 200
    body = health.get_json()
    assert (body["status"], body["database"]) == ("degraded", "ok")
    assert (body["redis"], body["broker"]) == ("unreachable", "unreachable")
    assert "last_worker_heartbeat" in body
    assert ready.status_code == 503
    assert ready.get_json()["redis"] == "unreachable"

    redis_proxy.restore()
    assert client.get("/readyz").status_code == 200


def test_a_change_that_queues_work_is_kept_and_answered_while_the_broker_is_away(
    client, demo, redis_proxy, caplog
):
    """The manager's request is committed before its message to the workers fails: the page
    says so, and the stalled-request sweep raises it in Jira once the broker is back."""
    sign_in(client, MANAGER)
    form = request_data(client, new_path(demo))
    redis_proxy.cut()
    response = client.post(new_path(demo), data=form)
    assert response.status_code == 302
    request = db.session.scalar(select(EnablementRequest))
    assert request.state == RequestState.QUEUED
    assert "could not be queued" in caplog.text
