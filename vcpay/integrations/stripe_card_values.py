"""What the Stripe adapter hands to vcpay about saved cards: a card saved on a setup Checkout
page, and charges made to it later without the patient (beside ``stripe_values``)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class CardSetupRequest:
    """What vcpay asks Stripe for to save a card: a Customer and a setup Checkout page, on
    the account the card will be charged on; each with its own key."""

    account_id: str
    email: str
    name: str
    success_url: str
    cancel_url: str
    expires_at: int
    idempotency_key: str
    metadata: dict[str, str]
    locale: str = "auto"


@dataclass(frozen=True)
class CardSetup:
    """A setup Checkout page and, once a card was saved on it, the card."""

    session_id: str
    url: str | None
    status: str  # open, complete or expired
    customer_id: str | None
    setup_intent_id: str | None = None
    saved: "SavedCardDetails | None" = None


@dataclass(frozen=True)
class SavedCardDetails:
    payment_method_id: str
    customer_id: str | None
    brand: str
    last4: str
    exp_month: int | None
    exp_year: int | None
    email: str = ""


@dataclass(frozen=True)
class OffSessionCharge:
    """A PaymentIntent on a saved card, as Stripe answered: ``status`` is Stripe's
    (succeeded, processing, requires_payment_method, requires_action, canceled);
    ``refusal`` the code of a refused attempt (``authentication_required``,
    ``card_declined``), ``message`` Stripe's words for it."""

    payment_intent_id: str
    status: str
    amount: int
    refusal: str = ""
    message: str = ""
    redirect_url: str | None = None
    charge_id: str | None = None
    card_brand: str = ""
    card_last4: str = ""
    receipt_number: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"
