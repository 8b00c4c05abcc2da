"""Stripe's test cards and what each one does (docs.stripe.com/testing), and reading the
card a person types into the pay page.

The stand-in never keeps a card number: a payment method carries its brand, last four digits
and a fingerprint (the same number always gives the same fingerprint, as on Stripe), and the
fingerprint is enough to look the test card's behaviour up again after 3-D Secure.
"""

import hashlib
import re
import time
from dataclasses import dataclass

from sandbox.stripe.store import ALPHANUMERIC

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/?\s*(\d{2}|\d{4})\s*$")


@dataclass(frozen=True)
class Decline:
    """What Stripe answers for a declined card: ``last_payment_error`` and the charge's
    ``failure_code``. ``decline_code`` is None for errors that are not a bank's decline."""

    code: str
    decline_code: str | None
    message: str
    reason: str  # the charge's outcome.reason
    cvc_check: str = "pass"


@dataclass(frozen=True)
class TestCard:
    number: str
    summary: str
    decline: Decline | None = None
    three_d_secure: bool = False
    # Saving the card (a SetupIntent) succeeds, and only charging it declines.
    declines_only_charges: bool = False
    # Asks for authentication on every payment, off-session ones too, however it was saved.
    always_authenticates: bool = False

    @property
    def setup_decline(self) -> Decline | None:
        """Saving a card checks it with the bank, so a declining card fails there already."""
        return None if self.declines_only_charges else self.decline


DECLINED = "Your card was declined."
GENERIC = Decline("card_declined", "generic_decline", DECLINED, "generic_decline")
INSUFFICIENT = Decline(
    "card_declined",
    "insufficient_funds",
    "Your card has insufficient funds.",
    "insufficient_funds",
)
AUTHENTICATION_REQUIRED = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
    "authentication_required",
)
AUTHENTICATION_FAILED = Decline(
    "card_declined",
    "authentication_required",
    "We are unable to authenticate your payment method. Please choose a different payment "
    "method and try again.",
    "authentication_required",
)
TEST_CARDS = (
    TestCard("4242424242424242", "Succeeds"),
    TestCard("5555555555554444", "Succeeds (Mastercard)"),
    TestCard("4000000000000002", "Declined", GENERIC),
    TestCard("4000000000009995", "Declined: insufficient funds", INSUFFICIENT),
    TestCard(
        "4000000000009987",
        "Declined: lost card",
        Decline("card_declined", "lost_card", DECLINED, "lost_card"),
    ),
    TestCard(
        "4000000000009979",
        "Declined: stolen card",
        Decline("card_declined", "stolen_card", DECLINED, "stolen_card"),
    ),
    TestCard(
        "4000000000000069",
        "Declined: expired card",
        Decline("expired_card", "expired_card", "Your card has expired.", "expired_card"),
    ),
    TestCard(
        "4000000000000127",
        "Declined: incorrect CVC",
        Decline(
            "incorrect_cvc",
            "incorrect_cvc",
            "Your card's security code is incorrect.",
            "incorrect_cvc",
            cvc_check="fail",
        ),
    ),
    TestCard(
        "4000000000000119",
        "Processing error",
        Decline(
            "processing_error",
            None,
            "An error occurred while processing your card. Try again in a little bit.",
            "processing_error",
        ),
    ),
    TestCard(
        "4000000000000341",
        "Saving succeeds, charging is declined",
        GENERIC,
        declines_only_charges=True,
    ),
    TestCard("4000002500003155", "3-D Secure, then succeeds", three_d_secure=True),
    TestCard(
        "4000002760003184", "3-D Secure always", three_d_secure=True, always_authenticates=True
    ),
    TestCard("4000000000003220", "3-D Secure 2, then succeeds", three_d_secure=True),
    TestCard("4000008400001629", "3-D Secure, then declined", GENERIC, three_d_secure=True),
    TestCard("4000008260003178", "3-D Secure, then insufficient funds", INSUFFICIENT, True),
)
# Shown on the pay page; the rest work too.
HINTED = ("4242424242424242", "4000000000000002", "4000000000009995", "4000000000000069",
          "4000000000000127", "4000002500003155")  # fmt: skip


def fingerprint(number: str) -> str:
    digest = hashlib.sha256(f"stripe-standin-card:{number}".encode()).digest()
    return "".join(ALPHANUMERIC[byte % len(ALPHANUMERIC)] for byte in digest[:16])


BY_FINGERPRINT = {fingerprint(card.number): card for card in TEST_CARDS}
SUCCEEDS = TestCard("", "Succeeds")


def test_card(card_fingerprint: str) -> TestCard:
    """Any other valid number succeeds, as on Stripe's test mode."""
    return BY_FINGERPRINT.get(card_fingerprint, SUCCEEDS)


def spaced(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def brand(number: str) -> str:
    if number.startswith(("34", "37")):
        return "amex"
    if number.startswith("5") or (number[:4].isdigit() and 2221 <= int(number[:4]) <= 2720):
        return "mastercard"
    if number.startswith("4"):
        return "visa"
    return "unknown"


def luhn_valid(number: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


@dataclass(frozen=True)
class CardDetails:
    """A card as the pay page or the control API takes it."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str
    name: str
    email: str

    @property
    def brand(self) -> str:
        return brand(self.number)

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.number)


@dataclass(frozen=True)
class PayerDetails:
    """Who pays by the delayed (bank debit) method: no card involved."""

    name: str
    email: str


def card_number_problem(number: str) -> str | None:
    if not number:
        return "Your card number is incomplete."
    if not number.isdigit():
        return "Your card number is invalid."
    length = 15 if brand(number) == "amex" else 16
    if len(number) < length:
        return "Your card number is incomplete."
    if len(number) > length or not luhn_valid(number):
        return "Your card number is invalid."
    return None


def read_expiry(text: str) -> tuple[int, int] | None:
    match = EXPIRY.match(text)
    if not match:
        return None
    month, year = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        return None
    return month, year if year >= 100 else 2000 + year


def expiry_problem(text: str) -> str | None:
    if not text.strip():
        return "Your card's expiration date is incomplete."
    expiry = read_expiry(text)
    if expiry is None:
        return "Your card's expiration date is invalid. Use MM / YY."
    month, year = expiry
    now = time.gmtime()
    if (year, month) < (now.tm_year, now.tm_mon):
        return "Your card's expiration date is in the past."
    return None


def email_problem(email: str) -> str | None:
    if not email:
        return "Enter your email address."
    if not EMAIL.match(email):
        return "Your email address is invalid."
    return None


def read_payer(fields: dict[str, str]) -> tuple[PayerDetails | None, dict[str, str]]:
    email, name = fields.get("email", "").strip(), fields.get("name", "").strip()
    problems = {}
    if problem := email_problem(email):
        problems["email"] = problem
    if not name:
        problems["name"] = "Enter the name on the card."
    return (None if problems else PayerDetails(name, email)), problems


def read_card(fields: dict[str, str]) -> tuple[CardDetails | None, dict[str, str]]:
    """The card from the form's fields, or a message per field that is wrong."""
    payer, problems = read_payer(fields)
    number = re.sub(r"[\s-]", "", fields.get("cardnumber", ""))
    cvc = fields.get("cvc", "").strip()
    expiry_text = fields.get("expiry", "")
    if problem := card_number_problem(number):
        problems["cardnumber"] = problem
    if problem := expiry_problem(expiry_text):
        problems["expiry"] = problem
    cvc_length = (4,) if brand(number) == "amex" else (3, 4)
    if not (cvc.isdigit() and len(cvc) in cvc_length):
        short = not cvc or (cvc.isdigit() and len(cvc) < min(cvc_length))
        problems["cvc"] = f"Your card's security code is {'incomplete' if short else 'invalid'}."
    if problems or payer is None:
        return None, problems
    month, year = read_expiry(expiry_text) or (0, 0)
    return CardDetails(number, month, year, cvc, payer.name, payer.email), {}
