"""Verified Stripe events, read into vcpay's values.

``envelope`` reads what the inbox stores of a signed body (nothing else); ``read_change``
turns a stored event into the typed value its handler takes, from the ids in its object and
the metadata's hint only. ``ValueError`` when the body names nothing vcpay could look for:
the event is then ignored, not retried.
"""

import re
from typing import Any

from vcpay.inputs import JsonRefused, read_json
from vcpay.integrations.stripe_values import (
    AccountAuthorized,
    AccountChanged,
    AccountDeauthorized,
    ChargeRefunded,
    CheckoutChanged,
    PaymentFailed,
    PaymentIntentChanged,
    PayoutChanged,
    RefundChanged,
    StripeChange,
    WebhookEvent,
)

# Stripe's shapes, within the inbox's columns: whatever is stored must fit and be sayable.
EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,251}")
EVENT_TYPE = re.compile(r"[a-z][a-z0-9_.]{0,99}")
ACCOUNT_ID = re.compile(r"acct_[A-Za-z0-9_]{1,59}")
# From Stripe's founding to well past any event it can send: a datetime on every backend.
CREATED_RANGE = (1_262_304_000, 4_102_444_800)  # 2010-01-01 to 2100-01-01, UTC


STRIPE_ID = re.compile(r"^[a-z]{2,8}_[A-Za-z0-9_]{1,250}$", re.ASCII)


def _id_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and STRIPE_ID.match(value) else None


CHECKOUT_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
)
PAYOUT_EVENTS = ("payout.created", "payout.updated", "payout.paid", "payout.failed")


def read_change(event_type: str, account: str | None, payload: str) -> StripeChange:
    """The typed value of a stored event of a type vcpay handles."""
    if event_type in CHECKOUT_EVENTS:
        return CheckoutChanged(account, _object_id(_data_object(payload)))
    if event_type == "payment_intent.payment_failed":
        intent = _data_object(payload)
        return PaymentFailed(account, _object_id(intent), _request_hint(intent))
    if event_type in ("payment_intent.succeeded", "payment_intent.requires_action"):
        intent = _data_object(payload)
        return PaymentIntentChanged(account, _object_id(intent), _request_hint(intent))
    if event_type == "charge.refunded":
        charge = _data_object(payload)
        return ChargeRefunded(
            account,
            _object_id(charge),
            _id_or_none(charge.get("payment_intent")),
            _request_hint(charge),
        )
    if event_type in REFUND_EVENTS:
        return _refund_changed(account, _data_object(payload))
    if event_type == "account.updated":
        return AccountChanged(account)
    if event_type == "account.application.authorized":
        return AccountAuthorized(account)
    if event_type == "account.application.deauthorized":
        return AccountDeauthorized(account)
    if event_type in PAYOUT_EVENTS:
        payout_id = _object_id(_data_object(payload))
        if not payout_id.startswith("po_"):
            raise ValueError("The event's object is not a payout.")
        return PayoutChanged(account, payout_id)
    raise ValueError(f"vcpay does not read {event_type} events.")


# Refunds: each event's object is the refund; its status is read from Stripe again.
REFUND_EVENTS = (
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refund.updated",
)


def _refund_changed(account: str | None, refund: dict[str, Any]) -> RefundChanged:
    return RefundChanged(
        account,
        _object_id(refund),
        _id_or_none(refund.get("charge")),
        _id_or_none(refund.get("payment_intent")),
    )


def _data_object(payload: str) -> dict[str, Any]:
    try:
        data_object = read_json(payload)["data"]["object"]
    except (JsonRefused, KeyError, TypeError):
        raise ValueError("The event carries no object.") from None
    if not isinstance(data_object, dict):
        raise ValueError("The event carries no object.")
    return data_object


def _object_id(data_object: dict[str, Any]) -> str:
    found = _id_or_none(data_object.get("id"))
    if found is None:
        raise ValueError("The event's object has no Stripe id.")
    return found


def _request_hint(data_object: dict[str, Any]) -> str | None:
    """vcpay's request key from the metadata: a hint for finding the row, never proof."""
    metadata = data_object.get("metadata")
    hint = metadata.get("payment_request") if isinstance(metadata, dict) else None
    return hint if isinstance(hint, str) and 0 < len(hint) <= 40 else None


def envelope(payload: bytes) -> WebhookEvent:
    try:
        text = payload.decode("utf-8")
        body = read_json(text)
    except UnicodeDecodeError:
        raise ValueError("The body is not UTF-8 text.") from None
    except JsonRefused as refused:
        raise ValueError(f"The body is not a Stripe event: {refused}") from None
    if not isinstance(body, dict):
        raise ValueError("The body is not a Stripe event.")
    return WebhookEvent(
        id=_matching(body.get("id"), EVENT_ID, "The event id is not a Stripe event id."),
        type=_matching(body.get("type"), EVENT_TYPE, "The event type is not a Stripe type."),
        account=_account(body.get("account")),
        livemode=bool(body.get("livemode")),
        created=_created(body.get("created")),
        payload=text,
    )


def _matching(value: Any, shape: re.Pattern, message: str) -> str:
    if not (isinstance(value, str) and shape.fullmatch(value)):
        raise ValueError(message)
    return value


def _account(value: Any) -> str | None:
    """Events about the platform itself name no account."""
    if value is None:
        return None
    return _matching(value, ACCOUNT_ID, "The event's account is not a Stripe account id.")


def _created(value: Any) -> int:
    low, high = CREATED_RANGE
    # bool is an int to Python, never to Stripe.
    if not (type(value) is int and low <= value < high):
        raise ValueError("The event's created time is not a time Stripe could have sent.")
    return value
