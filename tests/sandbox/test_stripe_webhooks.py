"""Connect webhook delivery: signatures the real library verifies, retries, and the test
modes (duplicate, out of order, delayed, bad signature, old timestamp)."""

import time

import pytest
import stripe

from tests.sandbox.stripe_helpers import WEBHOOK_SECRET, connect


def verified(delivery: dict) -> stripe.Event:
    return stripe.Webhook.construct_event(delivery["body"], delivery["signature"], WEBHOOK_SECRET)


def update(stripe_sandbox, account_id: str, number: int) -> None:
    stripe_sandbox.post(f"/accounts/{account_id}", {"business_name": f"Clinic {number}"})


def test_deliveries_are_signed_as_stripe_signs_them(stripe_api, stripe_sandbox, webhook_receiver):
    account_id = connect(stripe_sandbox, stripe_api)
    stripe_sandbox.post(f"/accounts/{account_id}", {"charges_enabled": False})
    stripe_sandbox.wait_for_webhooks()

    received = webhook_receiver.wait_for(2)
    events = [verified(r) for r in received]
    attempts = stripe_sandbox.deliveries()
    timestamp = int(received[0]["signature"].split(",")[0].removeprefix("t="))

    assert [e.type for e in events] == ["account.application.authorized", "account.updated"]
    assert all(e.account == account_id and e.livemode is False for e in events)
    assert events[1].data.object.charges_enabled is False
    assert events[1].data.previous_attributes.to_dict() == {
        "capabilities": {"card_payments": "active", "transfers": "active"},
        "charges_enabled": True,
    }
    assert received[0]["signature"] == stripe.WebhookSignature.generate_signature_header(
        received[0]["body"], WEBHOOK_SECRET, timestamp
    )
    assert received[0]["content_type"].startswith("application/json")
    assert abs(timestamp - time.time()) < 10
    assert [(a["event_id"], a["status_code"], a["attempt"]) for a in attempts] == [
        (events[0].id, 200, 1),
        (events[1].id, 200, 1),
    ]
    assert attempts[0]["url"] == webhook_receiver.url
    assert attempts[0]["signature_header"] == received[0]["signature"]
    stored = stripe_api.v1.events.retrieve(events[0].id, options={"stripe_account": account_id})
    assert stored.pending_webhooks == 0


def test_failed_deliveries_are_retried_until_they_succeed(
    stripe_api, stripe_sandbox, webhook_receiver
):
    webhook_receiver.answer_with(500, 503)
    account_id = connect(stripe_sandbox, stripe_api)

    received = webhook_receiver.wait_for(3)
    stripe_sandbox.wait_for_webhooks()
    attempts = stripe_sandbox.deliveries()

    assert [r["status"] for r in received] == [500, 503, 200]
    assert len({r["event"]["id"] for r in received}) == 1
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 500), (2, 503), (3, 200)]
    assert received[1]["at"] - received[0]["at"] >= 0.15  # the first retry waits 0.2 s
    unsent = stripe_api.v1.events.list(
        {"delivery_success": "false"}, {"stripe_account": account_id}
    )
    assert unsent.data == []


def test_deliveries_give_up_after_the_last_retry(stripe_api, stripe_sandbox, webhook_receiver):
    webhook_receiver.answer_with(500, 500, 500)
    account_id = connect(stripe_sandbox, stripe_api)

    webhook_receiver.wait_for(3)
    stripe_sandbox.wait_for_webhooks()  # the third attempt is the last: nothing is scheduled
    options = {"stripe_account": account_id}
    unsent = stripe_api.v1.events.list({"delivery_success": "false"}, options)

    assert len(webhook_receiver.received) == 3
    assert [a["attempt"] for a in stripe_sandbox.deliveries()] == [1, 2, 3]
    assert [e.type for e in unsent.data] == ["account.application.authorized"]
    assert unsent.data[0].pending_webhooks == 0
    assert stripe_api.v1.events.list({"delivery_success": "true"}, options).data == []


def test_a_refused_connection_is_a_failed_attempt(stripe_api, stripe_sandbox):
    stripe_sandbox.send_webhooks_to("http://127.0.0.1:9/nobody-listens")
    connect(stripe_sandbox, stripe_api)
    stripe_sandbox.wait_for_webhooks()

    attempt = stripe_sandbox.deliveries()[0]

    assert attempt["status_code"] is None
    assert attempt["error"]


def test_duplicate_delivers_the_same_event_twice(stripe_api, stripe_sandbox, webhook_receiver):
    stripe_sandbox.webhook_fault("duplicate")
    connect(stripe_sandbox, stripe_api)

    received = webhook_receiver.wait_for(2)

    assert received[0]["event"]["id"] == received[1]["event"]["id"]
    assert [verified(r).type for r in received] == ["account.application.authorized"] * 2


def test_held_events_are_released_in_reverse(stripe_api, stripe_sandbox, webhook_receiver):
    account_id = connect(stripe_sandbox, stripe_api)
    webhook_receiver.wait_for(1)
    stripe_sandbox.webhook_fault("hold", count=3)
    for number in range(3):
        update(stripe_sandbox, account_id, number)
    stripe_sandbox.wait_for_webhooks()
    assert len(webhook_receiver.received) == 1
    assert len(stripe_sandbox.get("/webhooks")["held"]) == 3

    stripe_sandbox.post("/webhooks/release", {"order": "reverse"})
    stripe_sandbox.wait_for_webhooks()

    received = webhook_receiver.wait_for(4)[1:]
    names = [r["event"]["data"]["object"]["business_profile"]["name"] for r in received]
    assert names == ["Clinic 2", "Clinic 1", "Clinic 0"]


def test_delay_holds_a_delivery_back(stripe_api, stripe_sandbox, webhook_receiver):
    stripe_sandbox.webhook_fault("delay", seconds=0.4)
    started = time.monotonic()
    connect(stripe_sandbox, stripe_api)

    received = webhook_receiver.wait_for(1)

    assert received[0]["at"] - started >= 0.35


def test_a_bad_signature_fails_verification_and_the_retry_is_good(
    stripe_api, stripe_sandbox, webhook_receiver
):
    webhook_receiver.answer_with(400)  # the receiver refuses what it cannot verify
    stripe_sandbox.webhook_fault("bad_signature")
    connect(stripe_sandbox, stripe_api)

    refused, retried = webhook_receiver.wait_for(2)

    with pytest.raises(stripe.SignatureVerificationError, match="No signatures found"):
        verified(refused)
    assert verified(retried).id == refused["event"]["id"]


def test_an_old_timestamp_fails_the_default_tolerance(stripe_api, stripe_sandbox, webhook_receiver):
    stripe_sandbox.webhook_fault("old_timestamp")
    connect(stripe_sandbox, stripe_api)

    delivery = webhook_receiver.wait_for(1)[0]

    with pytest.raises(stripe.SignatureVerificationError, match="outside the tolerance zone"):
        verified(delivery)
    timestamp = int(delivery["signature"].split(",")[0].removeprefix("t="))
    assert 590 <= time.time() - timestamp <= 620
    assert stripe.Webhook.construct_event(
        delivery["body"], delivery["signature"], WEBHOOK_SECRET, tolerance=0
    )


def test_faults_apply_to_the_next_events_only(stripe_api, stripe_sandbox, webhook_receiver):
    stripe_sandbox.webhook_fault("bad_signature", count=1)
    account_id = connect(stripe_sandbox, stripe_api)
    update(stripe_sandbox, account_id, 1)

    first, second = webhook_receiver.wait_for(2)  # the receiver answers 200: no retries

    with pytest.raises(stripe.SignatureVerificationError):
        verified(first)
    assert verified(second).type == "account.updated"


def test_redeliver_sends_an_event_again(stripe_api, stripe_sandbox, webhook_receiver):
    connect(stripe_sandbox, stripe_api)
    event_id = webhook_receiver.wait_for(1)[0]["event"]["id"]

    stripe_sandbox.post(f"/events/{event_id}/redeliver")
    stripe_sandbox.wait_for_webhooks()

    assert [r["event"]["id"] for r in webhook_receiver.wait_for(2)] == [event_id, event_id]
    assert len(stripe_sandbox.deliveries(event_id)) == 2


def test_without_an_endpoint_events_are_only_stored(stripe_api, stripe_sandbox):
    account_id = connect(stripe_sandbox, stripe_api)
    stripe_sandbox.wait_for_webhooks()

    event = stripe_api.v1.events.list(options={"stripe_account": account_id}).data[0]

    assert stripe_sandbox.deliveries() == []
    assert event.pending_webhooks == 0


def test_every_event_is_delivered_even_for_unconnected_accounts(
    stripe_api, stripe_sandbox, webhook_receiver
):
    stranger = stripe_sandbox.create_account()["id"]
    update(stripe_sandbox, stranger, 1)
    account_id = connect(stripe_sandbox, stripe_api)
    stripe_sandbox.post(f"/accounts/{account_id}/disconnect")
    stripe_sandbox.wait_for_webhooks()

    assert [(r["event"]["type"], r["event"]["account"]) for r in webhook_receiver.received] == [
        ("account.updated", stranger),
        ("account.application.authorized", account_id),
        ("account.application.deauthorized", account_id),
    ]
