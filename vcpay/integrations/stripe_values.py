"""What the Stripe adapter hands to vcpay: plain, frozen values carrying only what vcpay uses.

Nothing outside ``vcpay/integrations`` reads a Stripe dict or object; it reads these.
"""

from dataclasses import dataclass, field


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
    # Stripe's fee for the charge; None while its balance transaction is not there.
    stripe_fee: int | None = None
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
    locale: str = "auto"  # one of Stripe Checkout's (vcpay.payments.requesting.checkout_locale)


@dataclass(frozen=True)
class WebhookEvent:
    """The envelope of a verified Stripe event; ``payload`` is the body exactly as received."""

    id: str
    type: str
    account: str | None
    livemode: bool
    created: int
    payload: str


# What a verified event is about. Each carries the account it came from (None: the platform)
# and the ids vcpay looks its rows up by; never amounts or states, which are read from Stripe
# again for that account. ``payment_request`` is the metadata's hint, never proof.


@dataclass(frozen=True)
class CheckoutChanged:
    """A Checkout Session completed, settled later, failed later or expired."""

    account: str | None
    session_id: str


@dataclass(frozen=True)
class PaymentFailed:
    """An attempt to pay was declined; the patient may try another card."""

    account: str | None
    payment_intent_id: str
    payment_request: str | None = None


@dataclass(frozen=True)
class PaymentIntentChanged:
    """A PaymentIntent succeeded or needs its card's holder (a saved card's charge)."""

    account: str | None
    payment_intent_id: str
    payment_request: str | None


@dataclass(frozen=True)
class ChargeRefunded:
    account: str | None
    charge_id: str
    payment_intent_id: str | None = None
    payment_request: str | None = None


@dataclass(frozen=True)
class AccountChanged:
    """The clinic changed its account in its own Stripe dashboard."""

    account: str | None


@dataclass(frozen=True)
class AccountAuthorized:
    account: str | None


@dataclass(frozen=True)
class AccountDeauthorized:
    """The clinic disconnected its account from vcpay's platform."""

    account: str | None


@dataclass(frozen=True)
class PayoutChanged:
    """A payout was created, changed, paid or failed (``payout.*``)."""

    account: str | None
    payout_id: str


# Refunds: made in vcpay or in the clinic's Stripe dashboard, always read back from Stripe.


@dataclass(frozen=True)
class RefundSummary:
    """A refund as Stripe has it now, on the account it was made on."""

    id: str
    amount: int
    status: str  # pending, requires_action, succeeded, failed or canceled
    failure_reason: str
    payment_intent: str | None
    charge: str | None
    metadata: dict[str, str]
    created: int
    # All that the refund's charge has had refunded, as of this answer (a failed refund's
    # money is given back); None when Stripe was not asked for the charge too.
    charge_amount_refunded: int | None = None

    @property
    def refund_key(self) -> str | None:
        """vcpay's form key, when vcpay asked for it: a hint for finding the row, never proof."""
        return self.metadata.get("refund_key") or None


@dataclass(frozen=True)
class RefundChanged:
    """A refund was made or Stripe changed its status (``refund.created``, ``refund.updated``,
    ``refund.failed``, ``charge.refund.updated``)."""

    account: str | None
    refund_id: str
    charge_id: str | None = None
    payment_intent_id: str | None = None


StripeChange = (
    CheckoutChanged
    | PaymentFailed
    | PaymentIntentChanged
    | ChargeRefunded
    | AccountChanged
    | AccountAuthorized
    | AccountDeauthorized
    | PayoutChanged
    | RefundChanged
)


# Payouts: what Stripe paid into the clinic's bank, and the balance transactions each carried.


@dataclass(frozen=True)
class PayoutSummary:
    """A payout of a connected account, as Stripe has it now. Times are Unix seconds."""

    id: str
    amount: int  # minor units (cents)
    currency: str
    status: str  # pending, in_transit, paid, failed or canceled
    arrival_date: int
    created: int
    failure_code: str = ""
    failure_message: str = ""


@dataclass(frozen=True)
class BalanceEntry:
    """One balance transaction a payout carried: a charge, a refund, the payout itself...

    ``charge_id`` and ``payment_intent_id`` name the payment it is about, when it is about
    one: a charge's own, or the charge a refund gave money back from."""

    id: str
    type: str  # Stripe's: charge, refund, payout, payout_failure, adjustment...
    reporting_category: str
    amount: int  # minor units; negative when money left the balance
    fee: int
    net: int
    currency: str
    source_id: str  # ch_, re_, po_...
    description: str
    created: int
    charge_id: str | None = None
    payment_intent_id: str | None = None
