"""The Stripe adapter: the only code in vcpay that imports ``stripe``.

One ``StripeClient`` per configuration, with explicit base addresses (real Stripe or the
stand-in), network retries and timeouts; the module-level globals are never used, because
``stripe.OAuth`` captures the connect base when it is first imported. Failures come out as
``StripeUnavailable`` (try again later) or ``StripeRefused`` (Stripe said no), with a message
fit for people; the Stripe request id is kept for support.
"""

import logging
import math
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import stripe
from flask import current_app
from stripe import oauth_error

from vcpay.inputs import JsonRefused, read_json

log = logging.getLogger(__name__)

# Stripe takes a Checkout Session's expires_at from 30 minutes to 24 hours after it creates
# the session, by its own clock, to the second, with no leeway. Asked for at the very edge, a
# session is refused whenever a second passes on the way (or in a retry, or Stripe's clock is
# ahead), so the page stays open up to this much longer than the request it is for.
CHECKOUT_LIFETIME_SECONDS = (30 * 60, 24 * 60 * 60)
CHECKOUT_CLOCK_ALLOWANCE_SECONDS = 60


class StripeGatewayError(Exception):
    def __init__(self, message: str, request_id: str | None = None):
        super().__init__(message)
        self.request_id = request_id


class StripeUnavailable(StripeGatewayError):
    """Stripe could not be reached, was too slow, or failed: the same call may work later."""


class IdempotencyKeyInUse(StripeGatewayError):
    """Stripe is answering, or has answered, another request made with the same idempotency
    key (409 while it runs; 400 if its parameters differ): a double click's twin."""


class StripeRefused(StripeGatewayError):
    """Stripe refused the call: retrying it unchanged will not help."""


class AuthorisationCodeRejected(StripeRefused):
    """The code Stripe sent back was unknown, expired or already used."""


class AccountNotConnected(StripeRefused):
    """The account is not (or no longer) connected to vcpay's platform."""


class WebhookSignatureInvalid(Exception):
    """A webhook whose signature is missing, wrong or too old: it did not come from Stripe."""


@dataclass(frozen=True)
class AccountSummary:
    """What the Client Payments page shows of a connected Stripe account."""

    id: str
    display_name: str
    country: str
    email: str
    charges_enabled: bool
    payouts_enabled: bool
    details_submitted: bool
    requirements_due: list[str] = field(default_factory=list)
    disabled_reason: str | None = None


@dataclass(frozen=True)
class CheckoutSummary:
    """A Checkout Session and, once paid, the card and receipt details of its charge."""

    id: str
    url: str | None
    status: str  # open, complete or expired
    payment_status: str  # unpaid, paid or no_payment_required
    amount_total: int
    expires_at: int
    payment_intent_id: str | None = None
    email: str = ""
    name: str = ""
    card_brand: str = ""
    card_last4: str = ""
    receipt_number: str = ""
    amount_refunded: int = 0
    payment_intent_status: str = ""
    latest_charge_id: str | None = None
    # Why the last attempt to pay was refused (a declined card), while the patient may retry.
    decline_message: str = ""

    @property
    def delayed_payment_failed(self) -> bool:
        """Completed with a method that settles later, which then failed."""
        return (
            self.status == "complete"
            and self.payment_status == "unpaid"
            and self.payment_intent_status in ("requires_payment_method", "canceled")
        )

    @property
    def is_paid(self) -> bool:
        return self.status == "complete" and self.payment_status == "paid"


@dataclass(frozen=True)
class CheckoutRequest:
    """What vcpay asks Stripe Checkout for: one line, in the clinic's account."""

    account_id: str
    amount: int
    currency: str
    description: str
    success_url: str
    cancel_url: str
    expires_at: int
    idempotency_key: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class EventObject:
    """What a stored event says it is about, read from its body: hints for finding vcpay's
    row, never proof. Amounts and states are read from Stripe again for the row's account."""

    id: str
    kind: str  # Stripe's object name: checkout.session, payment_intent, charge, account
    payment_intent_id: str | None = None  # a charge's PaymentIntent
    payment_request: str | None = None  # vcpay's request key from the metadata


@dataclass(frozen=True)
class WebhookEvent:
    """The envelope of a verified Stripe event; ``payload`` is the body exactly as received."""

    id: str
    type: str
    account: str | None
    livemode: bool
    created: int
    payload: str


def _request_id(error: stripe.StripeError) -> str | None:
    return getattr(error, "request_id", None)


def _oauth_refusal(error: oauth_error.OAuthError, action: str) -> StripeRefused:
    if isinstance(error, oauth_error.InvalidGrantError):
        return AuthorisationCodeRejected(
            "Stripe did not accept the authorisation: it has expired or was already used.",
            _request_id(error),
        )
    if isinstance(error, oauth_error.InvalidClientError):
        return AccountNotConnected(
            f"Stripe says this account is not connected to vcpay ({action}).", _request_id(error)
        )
    return StripeRefused(
        f"Stripe refused to {action}: {error.user_message or error}", _request_id(error)
    )


@contextmanager
def _calling(action: str) -> Iterator[None]:
    """Translate the library's errors; the library has already retried what it may."""
    try:
        yield
    except oauth_error.OAuthError as error:
        raise _oauth_refusal(error, action) from None
    except stripe.APIConnectionError as error:
        raise StripeUnavailable(
            f"Stripe could not be reached to {action}.", _request_id(error)
        ) from None
    except stripe.RateLimitError as error:
        raise StripeUnavailable(
            f"Stripe is busy and asked vcpay to slow down while trying to {action}.",
            _request_id(error),
        ) from None
    except stripe.AuthenticationError as error:
        log.error("Stripe rejected vcpay's secret key (request %s)", _request_id(error))
        raise StripeRefused(
            "Stripe rejected vcpay's platform key; an administrator must check the Stripe "
            "settings.",
            _request_id(error),
        ) from None
    except stripe.PermissionError as error:
        raise AccountNotConnected(
            f"Stripe says this account is not connected to vcpay ({action}).", _request_id(error)
        ) from None
    except stripe.IdempotencyError as error:
        raise IdempotencyKeyInUse(
            f"Stripe has an earlier request with the same key to {action}.", _request_id(error)
        ) from None
    except stripe.InvalidRequestError as error:
        raise StripeRefused(
            f"Stripe refused to {action}: {error.user_message or error}", _request_id(error)
        ) from None
    except stripe.StripeError as error:
        status = getattr(error, "http_status", None)
        if status == 409:
            raise IdempotencyKeyInUse(
                f"Stripe is still answering an earlier request with the same key to {action}.",
                _request_id(error),
            ) from None
        raise StripeUnavailable(
            f"Stripe failed ({status or 'no answer'}) while vcpay tried to {action}.",
            _request_id(error),
        ) from None


def _summary(account: Any) -> AccountSummary:
    data = account.to_dict()
    profile = data.get("business_profile") or {}
    dashboard = (data.get("settings") or {}).get("dashboard") or {}
    requirements = data.get("requirements") or {}
    due = [*requirements.get("past_due", []), *requirements.get("currently_due", [])]
    return AccountSummary(
        id=data["id"],
        display_name=dashboard.get("display_name") or profile.get("name") or data["id"],
        country=data.get("country") or "",
        email=data.get("email") or "",
        charges_enabled=bool(data.get("charges_enabled")),
        payouts_enabled=bool(data.get("payouts_enabled")),
        details_submitted=bool(data.get("details_submitted")),
        requirements_due=list(dict.fromkeys(due)),
        disabled_reason=requirements.get("disabled_reason"),
    )


@dataclass(frozen=True)
class StripeSettings:
    secret_key: str
    client_id: str
    webhook_secret: str
    api_base: str
    connect_base: str
    dashboard_url: str
    max_network_retries: int
    timeout_seconds: float
    webhook_tolerance_seconds: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "StripeSettings":
        api_base = config["STRIPE_API_BASE"].rstrip("/")
        connect_base, dashboard_url = _companion_addresses(api_base)
        return cls(
            secret_key=config["STRIPE_SECRET_KEY"],
            client_id=config["STRIPE_CLIENT_ID"],
            webhook_secret=config["STRIPE_WEBHOOK_SECRET"],
            api_base=api_base,
            connect_base=(config["STRIPE_CONNECT_BASE"] or connect_base).rstrip("/"),
            dashboard_url=(config["STRIPE_DASHBOARD_URL"] or dashboard_url).rstrip("/"),
            max_network_retries=config["STRIPE_MAX_NETWORK_RETRIES"],
            timeout_seconds=config["STRIPE_TIMEOUT_SECONDS"],
            webhook_tolerance_seconds=config["STRIPE_WEBHOOK_TOLERANCE_SECONDS"],
        )

    @property
    def livemode(self) -> bool:
        return self.secret_key.startswith(("sk_live_", "rk_live_"))


STRIPE_API = "https://api.stripe.com"


def _companion_addresses(api_base: str) -> tuple[str, str]:
    """The connect base and dashboard that go with an api base: Stripe's own for Stripe,
    the same server for the stand-in, which serves all three."""
    if api_base == STRIPE_API:
        return "https://connect.stripe.com", "https://dashboard.stripe.com"
    return api_base, f"{api_base}/dashboard"


@lru_cache(maxsize=8)
def _client(settings: StripeSettings) -> stripe.StripeClient:
    # The library joins base and path as they are, so the bases carry no trailing slash.
    return stripe.StripeClient(
        settings.secret_key,
        client_id=settings.client_id,
        base_addresses={"api": settings.api_base, "connect": settings.connect_base},
        max_network_retries=settings.max_network_retries,
        http_client=stripe.RequestsClient(timeout=settings.timeout_seconds),
    )


def forget_clients() -> None:
    """Drop cached clients (tests change the configuration between cases)."""
    _client.cache_clear()


class StripeGateway:
    """Everything vcpay asks of Stripe, in vcpay's words."""

    def __init__(self, settings: StripeSettings):
        self.settings = settings
        self.client = _client(settings)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "StripeGateway":
        return cls(StripeSettings.from_config(config))

    @classmethod
    def for_app(cls) -> "StripeGateway":
        """The gateway of the running application (a request, a task or a command)."""
        return cls.from_config(current_app.config)

    def authorize_url(self, state: str, redirect_uri: str) -> str:
        """Where "Go to Stripe" sends the clinic admin: sign in and connect an existing account."""
        return self.client.oauth.authorize_url(
            {
                "scope": "read_write",
                "state": state,
                "stripe_landing": "login",
                "redirect_uri": redirect_uri,
            }
        )

    def exchange_code(self, code: str) -> str:
        """The connected account's ``acct_`` id; the tokens Stripe also returns are dropped."""
        with _calling("finish linking the account"):
            token = self.client.oauth.token({"grant_type": "authorization_code", "code": code})
        return token["stripe_user_id"]

    def deauthorize(self, account_id: str) -> None:
        with _calling("disconnect the account"):
            self.client.oauth.deauthorize({"stripe_user_id": account_id})

    def retrieve_account(self, account_id: str) -> AccountSummary:
        with _calling("read the account"):
            account = self.client.v1.accounts.retrieve(account_id)
        return _summary(account)

    def create_checkout_session(self, order: CheckoutRequest) -> CheckoutSummary:
        """A direct charge on the clinic's account; the same key makes the same session."""
        params = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": order.currency,
                        "unit_amount": order.amount,
                        "product_data": {"name": order.description},
                    },
                }
            ],
            "payment_intent_data": {"description": order.description, "metadata": order.metadata},
            "metadata": order.metadata,
            "client_reference_id": order.metadata.get("payment_request", ""),
            "success_url": order.success_url,
            "cancel_url": order.cancel_url,
            "expires_at": within_checkout_window(order.expires_at, time.time()),
        }
        options = {"stripe_account": order.account_id, "idempotency_key": order.idempotency_key}
        with _calling("create the payment page"):
            session = self.client.v1.checkout.sessions.create(params, options)
        return _checkout(session.to_dict())

    def retrieve_checkout_session(self, account_id: str, session_id: str) -> CheckoutSummary:
        with _calling("read the payment"):
            session = self.client.v1.checkout.sessions.retrieve(
                session_id,
                {"expand": ["payment_intent.latest_charge"]},
                {"stripe_account": account_id},
            )
        return _checkout(session.to_dict())

    def expire_checkout_session(self, account_id: str, session_id: str) -> CheckoutSummary:
        """Close the payment page; Stripe refuses once it is paid or expired (then re-read it)."""
        try:
            with _calling("close the payment page"):
                self.client.v1.checkout.sessions.expire(
                    session_id, options={"stripe_account": account_id}
                )
        except StripeRefused:
            pass  # no longer open: what it became is read below
        return self.retrieve_checkout_session(account_id, session_id)

    def dashboard_url(self, account_id: str) -> str:
        return f"{self.settings.dashboard_url}/{account_id}"

    def verify_webhook(self, payload: bytes, signature: str | None) -> WebhookEvent:
        """Check the signature on the raw body, then read the envelope (nothing else)."""
        if not signature:
            raise WebhookSignatureInvalid("The Stripe-Signature header is missing.")
        try:
            stripe.WebhookSignature.verify_header(
                payload,
                signature,
                self.settings.webhook_secret,
                tolerance=self.settings.webhook_tolerance_seconds,
            )
        except stripe.SignatureVerificationError as error:
            raise WebhookSignatureInvalid(str(error).split(",")[0]) from None
        return _envelope(payload)


def _charge_details(payment_intent: Any) -> dict[str, Any]:
    """Card, receipt and refund details of the intent's latest charge, when expanded."""
    if not isinstance(payment_intent, dict):
        return {}
    charge = payment_intent.get("latest_charge")
    # After a decline the latest charge is the failed one: its card did not pay.
    if not isinstance(charge, dict) or charge.get("status") != "succeeded":
        return {}
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    return {
        "card_brand": card.get("brand") or "",
        "card_last4": card.get("last4") or "",
        "receipt_number": charge.get("receipt_number") or "",
        "amount_refunded": charge.get("amount_refunded") or 0,
    }


def _latest_charge_id(payment_intent: Any) -> str | None:
    if not isinstance(payment_intent, dict):
        return None
    charge = payment_intent.get("latest_charge")
    return charge.get("id") if isinstance(charge, dict) else charge


def _decline_message(payment_intent: Any) -> str:
    """The refusal of the last attempt, while the intent waits for another card."""
    if not isinstance(payment_intent, dict):
        return ""
    if payment_intent.get("status") != "requires_payment_method":
        return ""
    error = payment_intent.get("last_payment_error") or {}
    return str(error.get("message") or "")


def _checkout(data: dict[str, Any]) -> CheckoutSummary:
    payment_intent = data.get("payment_intent")
    customer = data.get("customer_details") or {}
    return CheckoutSummary(
        id=data["id"],
        url=data.get("url"),
        status=data.get("status") or "open",
        payment_status=data.get("payment_status") or "unpaid",
        amount_total=data.get("amount_total") or 0,
        expires_at=data.get("expires_at") or 0,
        payment_intent_id=(
            payment_intent.get("id") if isinstance(payment_intent, dict) else payment_intent
        ),
        payment_intent_status=(
            payment_intent.get("status") or "" if isinstance(payment_intent, dict) else ""
        ),
        email=customer.get("email") or data.get("customer_email") or "",
        name=customer.get("name") or "",
        latest_charge_id=_latest_charge_id(payment_intent),
        decline_message=_decline_message(payment_intent),
        **_charge_details(payment_intent),
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


def event_object(payload: str) -> EventObject:
    """The object a stored event is about. ``ValueError`` when the body names none that
    vcpay could look for (the event is then ignored, not retried)."""
    try:
        data_object = read_json(payload)["data"]["object"]
    except (JsonRefused, KeyError, TypeError):
        raise ValueError("The event carries no object.") from None
    if not isinstance(data_object, dict) or _id_or_none(data_object.get("id")) is None:
        raise ValueError("The event's object has no Stripe id.")
    metadata = data_object.get("metadata")
    hint = metadata.get("payment_request") if isinstance(metadata, dict) else None
    return EventObject(
        id=data_object["id"],
        kind=str(data_object.get("object") or "")[:40],
        payment_intent_id=_id_or_none(data_object.get("payment_intent")),
        payment_request=hint if isinstance(hint, str) and 0 < len(hint) <= 40 else None,
    )


def _envelope(payload: bytes) -> WebhookEvent:
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


def within_checkout_window(expires_at: int, now: float) -> int:
    """``expires_at`` moved inside the window Stripe will measure from the session's creation."""
    shortest, longest = CHECKOUT_LIFETIME_SECONDS
    earliest = math.ceil(now) + shortest + CHECKOUT_CLOCK_ALLOWANCE_SECONDS
    latest = math.floor(now) + longest - CHECKOUT_CLOCK_ALLOWANCE_SECONDS
    return min(max(expires_at, earliest), latest)
