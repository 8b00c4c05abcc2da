"""The Stripe adapter's client: the only code in vcpay that calls Stripe.

One ``StripeClient`` per configuration, with explicit base addresses (real Stripe or the
stand-in), network retries and timeouts; the module-level globals are never used, because
``stripe.OAuth`` captures the connect base when it is first imported. Failures come out as
the errors of ``stripe_errors``; what Stripe answers comes out as the values of
``stripe_values``, read from Stripe's objects here and nowhere else. Longer than most modules
because it is the one door to Stripe: each call vcpay makes is a method here, over one client
(payouts' reading is in ``stripe_payouts``).
"""

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import stripe
from flask import current_app

from vcpay.integrations import stripe_cards
from vcpay.integrations.stripe_card_values import CardSetup, CardSetupRequest, OffSessionCharge
from vcpay.integrations.stripe_errors import (
    RefundTooLarge,
    StripeApiError,
    StripeRefused,
    WebhookSignatureInvalid,
    calling_stripe,
)
from vcpay.integrations.stripe_events import envelope
from vcpay.integrations.stripe_payouts import (
    PAGE_SIZE,
    charge_fee,
    read_balance_entry,
    read_payout,
)
from vcpay.integrations.stripe_values import (
    AccountSummary,
    BalanceEntry,
    CheckoutRequest,
    CheckoutSummary,
    PayoutSummary,
    RefundSummary,
    WebhookEvent,
)

# Stripe takes a Checkout Session's expires_at from 30 minutes to 24 hours after it creates
# the session, by its own clock, to the second, with no leeway. Asked for at the very edge, a
# session is refused whenever a second passes on the way (or in a retry, or Stripe's clock is
# ahead), so the page stays open up to this much longer than the request it is for.
CHECKOUT_LIFETIME_SECONDS = (30 * 60, 24 * 60 * 60)
CHECKOUT_CLOCK_ALLOWANCE_SECONDS = 60


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
        return is_live_key(self.secret_key)


def is_live_key(secret_key: str) -> bool:
    """Whether the key acts on Stripe's live data (else on its test data)."""
    return secret_key.startswith(("sk_live_", "rk_live_"))


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


class StripeApi:
    """Everything vcpay asks of Stripe, in vcpay's words."""

    def __init__(self, settings: StripeSettings):
        self.settings = settings
        self.client = _client(settings)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "StripeApi":
        return cls(StripeSettings.from_config(config))

    @classmethod
    def for_app(cls) -> "StripeApi":
        """The Stripe adapter of the running application (a request, a task or a command)."""
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
        with calling_stripe("finish linking the account"):
            token = self.client.oauth.token({"grant_type": "authorization_code", "code": code})
        return token["stripe_user_id"]

    def deauthorize(self, account_id: str) -> None:
        with calling_stripe("disconnect the account"):
            self.client.oauth.deauthorize({"stripe_user_id": account_id})

    def retrieve_account(self, account_id: str) -> AccountSummary:
        with calling_stripe("read the account"):
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
            "locale": order.locale,
        }
        options = {"stripe_account": order.account_id, "idempotency_key": order.idempotency_key}
        with calling_stripe("create the payment page"):
            session = self.client.v1.checkout.sessions.create(params, options)
        return _checkout(session.to_dict())

    def retrieve_checkout_session(self, account_id: str, session_id: str) -> CheckoutSummary:
        with calling_stripe("read the payment"):
            session = self.client.v1.checkout.sessions.retrieve(
                session_id,
                # The charge's balance transaction carries Stripe's fee.
                {"expand": ["payment_intent.latest_charge.balance_transaction"]},
                {"stripe_account": account_id},
            )
        return _checkout(session.to_dict())

    def expire_checkout_session(self, account_id: str, session_id: str) -> CheckoutSummary:
        """Close the payment page; Stripe refuses once it is paid or expired (then re-read it)."""
        try:
            with calling_stripe("close the payment page"):
                self.client.v1.checkout.sessions.expire(
                    session_id, options={"stripe_account": account_id}
                )
        except StripeRefused:
            pass  # no longer open: what it became is read below
        return self.retrieve_checkout_session(account_id, session_id)

    def dashboard_url(self, account_id: str) -> str:
        return f"{self.settings.dashboard_url}/{account_id}"

    def payment_dashboard_url(self, account_id: str, payment_intent_id: str) -> str:
        """The payment in the clinic's own Stripe dashboard."""
        return f"{self.dashboard_url(account_id)}/payments/{payment_intent_id}"

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
        return envelope(payload)

    # Payouts: read only. What Stripe paid into the clinic's bank, and what each carried.

    def list_payouts(self, account_id: str, since: int | None = None) -> list[PayoutSummary]:
        """Every payout of the account (created at or after ``since``, Unix seconds), newest
        first, across all of Stripe's pages."""
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if since is not None:
            params["created"] = {"gte": since}
        with calling_stripe("read the payouts"):
            page = self.client.v1.payouts.list(params, {"stripe_account": account_id})
            return [read_payout(p.to_dict()) for p in page.auto_paging_iter()]

    def retrieve_payout(self, account_id: str, payout_id: str) -> PayoutSummary:
        with calling_stripe("read the payout"):
            payout = self.client.v1.payouts.retrieve(
                payout_id, options={"stripe_account": account_id}
            )
        return read_payout(payout.to_dict())

    def payout_transactions(self, account_id: str, payout_id: str) -> list[BalanceEntry]:
        """Every balance transaction the payout carried (its own included), each with the
        charge it is about, across all of Stripe's pages."""
        params = {"payout": payout_id, "limit": PAGE_SIZE, "expand": ["data.source"]}
        with calling_stripe("read what the payout carried"):
            page = self.client.v1.balance_transactions.list(params, {"stripe_account": account_id})
            return [read_balance_entry(t.to_dict()) for t in page.auto_paging_iter()]

    # Refunds, on the connected account that took the payment they give back.

    def create_refund(
        self,
        account_id: str,
        payment_intent_id: str,
        amount: int,
        reason_code: str | None,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> RefundSummary:
        """One refund of ``amount`` cents of the payment; the same key makes the same refund.
        More than the charge has left raises ``RefundTooLarge``, with what it has left."""
        params: dict[str, Any] = {
            "payment_intent": payment_intent_id,
            "amount": amount,
            "metadata": metadata,
            "expand": ["charge"],
        }
        if reason_code:
            params["reason"] = reason_code
        options = {"stripe_account": account_id, "idempotency_key": idempotency_key}
        try:
            with calling_stripe("refund the payment"):
                refund = self.client.v1.refunds.create(params, options)
        except RefundTooLarge as refused:
            refused.remaining = self._unrefunded(account_id, payment_intent_id)
            raise
        return _refund(refund.to_dict())

    def retrieve_refund(self, account_id: str, refund_id: str) -> RefundSummary:
        """The refund, with what its charge has had refunded in all."""
        with calling_stripe("read the refund"):
            refund = self.client.v1.refunds.retrieve(
                refund_id, {"expand": ["charge"]}, {"stripe_account": account_id}
            )
        return _refund(refund.to_dict())

    def list_refunds(self, account_id: str, payment_intent_id: str) -> list[RefundSummary]:
        """Every refund of the payment, newest first."""
        with calling_stripe("read the refunds"):
            page = self.client.v1.refunds.list(
                {"payment_intent": payment_intent_id, "limit": 100},
                {"stripe_account": account_id},
            )
            return [_refund(refund.to_dict()) for refund in page.auto_paging_iter()]

    # Saved cards, on the connected account the card was saved on (``stripe_cards``).

    def start_card_setup(self, order: CardSetupRequest) -> CardSetup:
        """A Customer and a setup Checkout page for them; the same key makes the same ones."""
        expires_at = within_checkout_window(order.expires_at, time.time())
        return stripe_cards.start_setup(self.client, order, expires_at)

    def read_card_setup(self, account_id: str, session_id: str) -> CardSetup:
        return stripe_cards.read_setup(self.client, account_id, session_id)

    def charge_saved_card(
        self,
        account_id: str,
        customer_id: str,
        payment_method_id: str,
        amount: int,
        description: str,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> OffSessionCharge:
        params = {
            "amount": amount,
            "currency": "aud",
            "customer": customer_id,
            "payment_method": payment_method_id,
            "description": description,
            "metadata": metadata,
        }
        return stripe_cards.charge(self.client, account_id, params, idempotency_key)

    def confirm_saved_card_charge(
        self, account_id: str, payment_intent_id: str, payment_method_id: str, return_url: str
    ) -> OffSessionCharge:
        return stripe_cards.confirm(
            self.client, account_id, payment_intent_id, payment_method_id, return_url
        )

    def read_saved_card_charge(self, account_id: str, payment_intent_id: str) -> OffSessionCharge:
        return stripe_cards.read_charge(self.client, account_id, payment_intent_id)

    def detach_card(self, account_id: str, payment_method_id: str) -> None:
        stripe_cards.detach(self.client, account_id, payment_method_id)

    def _unrefunded(self, account_id: str, payment_intent_id: str) -> int | None:
        """What the payment's charge has left to refund, or None if Stripe cannot say now."""
        try:
            with calling_stripe("read the payment"):
                intent = self.client.v1.payment_intents.retrieve(
                    payment_intent_id, {"expand": ["latest_charge"]}, {"stripe_account": account_id}
                )
        except StripeApiError:
            return None
        charge = intent.to_dict().get("latest_charge")
        if not isinstance(charge, dict):
            return None
        return max(0, (charge.get("amount") or 0) - (charge.get("amount_refunded") or 0))


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
        "stripe_fee": charge_fee(charge),
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


def _refund(data: dict[str, Any]) -> RefundSummary:
    charge = data.get("charge")
    metadata = data.get("metadata") or {}
    return RefundSummary(
        id=data["id"],
        amount=data.get("amount") or 0,
        status=data.get("status") or "pending",
        failure_reason=data.get("failure_reason") or "",
        payment_intent=data.get("payment_intent"),
        charge=charge.get("id") if isinstance(charge, dict) else charge,
        metadata={str(k): str(v) for k, v in metadata.items()},
        created=data.get("created") or 0,
        charge_amount_refunded=(
            charge.get("amount_refunded") or 0 if isinstance(charge, dict) else None
        ),
    )


def within_checkout_window(expires_at: int, now: float) -> int:
    """``expires_at`` moved inside the window Stripe will measure from the session's creation."""
    shortest, longest = CHECKOUT_LIFETIME_SECONDS
    earliest = math.ceil(now) + shortest + CHECKOUT_CLOCK_ALLOWANCE_SECONDS
    latest = math.floor(now) + longest - CHECKOUT_CLOCK_ALLOWANCE_SECONDS
    return min(max(expires_at, earliest), latest)
