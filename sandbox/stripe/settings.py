"""How one Stripe stand-in is configured: the platform's keys, OAuth redirects and webhooks."""

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class StripeStandinSettings:
    # Links in responses (Checkout URLs, the dashboard) use this; empty means "the URL the
    # request came in on".
    public_url: str = ""
    state_file: str | None = None
    # The platform's credentials. Published sandbox values, not secrets.
    secret_key: str = "sk_test_vcpay_sandbox"  # noqa: S105
    client_id: str = "ca_vcpay_sandbox"
    platform_name: str = "vcpay"
    # Registered OAuth redirect URIs. Empty accepts any http(s) URI; otherwise a redirect_uri
    # must match one exactly, and an omitted one means the first, as on Stripe.
    redirect_uris: tuple[str, ...] = ()
    # The Connect webhook endpoint; empty stores events without delivering them.
    webhook_url: str = ""
    webhook_secret: str = "whsec_vcpay_sandbox"  # noqa: S105
    # Seconds to wait before each retry of a failed delivery; Stripe's sandbox retries three
    # times over a few hours, compressed here.
    webhook_retry_seconds: tuple[float, ...] = (5.0, 30.0, 120.0)
    webhook_timeout_seconds: float = 10.0
    code_lifetime_seconds: float = 300
    # How often open Checkout Sessions past their expires_at are expired.
    checkout_expiry_seconds: float = 1.0
    # How long a charge's funds stay pending before they are available to pay out (Stripe
    # counts business days: two in Australia for most accounts).
    available_after_seconds: float = 2 * 24 * 60 * 60
    # A payout schedule for demos: every this many seconds each account's pending funds are
    # made available and paid out, and the last round's payouts arrive. 0: no schedule.
    payout_seconds: float = 0
    # Create two clinics' test accounts when the state is empty, so a demo has some to pick.
    demo_accounts: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        object.__setattr__(self, "redirect_uris", tuple(self.redirect_uris))
        object.__setattr__(
            self, "webhook_retry_seconds", tuple(float(s) for s in self.webhook_retry_seconds)
        )
        if self.checkout_expiry_seconds <= 0:
            raise ValueError("checkout_expiry_seconds must be positive")
        if self.available_after_seconds < 0 or self.payout_seconds < 0:
            raise ValueError("available_after_seconds and payout_seconds must not be negative")
        if any(s < 0 for s in self.webhook_retry_seconds):
            raise ValueError("webhook_retry_seconds must not be negative")
        if not self.secret_key.startswith("sk_"):
            raise ValueError("secret_key must look like a Stripe secret key (sk_...)")
        if not self.client_id.startswith("ca_"):
            raise ValueError("client_id must look like a Connect client id (ca_...)")

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None) -> "StripeStandinSettings":
        config = dict(config or {})
        known = {f.name for f in fields(cls)}
        unknown = set(config) - known
        if unknown:
            raise TypeError(f"unknown Stripe stand-in settings: {', '.join(sorted(unknown))}")
        return cls(**config)
