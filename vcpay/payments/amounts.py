"""Reading an amount of Australian dollars as a person types it."""

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel.numbers import format_currency
from flask_babel import get_locale
from flask_babel import gettext as _

from vcpay.payments.models import MAXIMUM_AMOUNT, MINIMUM_AMOUNT

# "85", "85.5", "85.50", "$85.00", "A$ 1,250.00": commas only between groups of three.
# ASCII only: \d alone matches digits of every script, which Decimal would then accept.
AMOUNT = re.compile(r"^(?:A?\$)?\s*(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?$", re.ASCII)


class AmountInvalid(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def parse_amount(text: str) -> int:
    """Cents, or ``AmountInvalid`` with a message that says what to change."""
    cleaned = (text or "").strip()
    if not cleaned:
        raise AmountInvalid(_("Enter the amount to request, for example 85.00."))
    if cleaned.startswith("-") or cleaned.lstrip("A$ ").startswith("-"):
        raise AmountInvalid(_("The amount must be more than zero."))
    match = AMOUNT.match(cleaned)
    if match is None:
        raise AmountInvalid(
            _("Enter the amount as a number in dollars and cents, for example 85.00 or 1,250.00.")
        )
    whole, cents = match.group(1).replace(",", ""), match.group(2) or ""
    if len(cents) > 2:
        raise AmountInvalid(_("An amount has at most two decimal places (cents)."))
    try:
        amount = int(Decimal(f"{whole}.{cents or '0'}") * 100)
    except InvalidOperation:  # pragma: no cover - the pattern admits only digits
        raise AmountInvalid(_("Enter the amount as a number.")) from None
    if amount == 0:
        raise AmountInvalid(_("The amount must be more than zero."))
    if amount < MINIMUM_AMOUNT:
        raise AmountInvalid(_("The smallest amount Stripe accepts is A$0.50."))
    if amount > MAXIMUM_AMOUNT:
        raise AmountInvalid(_("The largest amount Stripe accepts is A$999,999.99."))
    return amount


def format_amount(amount: int, currency: str = "aud") -> str:
    """A$85.00, in the reader's locale."""
    try:
        locale = get_locale() or "en"
    except RuntimeError:  # outside a request (a worker writing an email)
        locale = "en"
    return _formatted(amount, currency.upper(), str(locale))


@lru_cache(maxsize=4096)
def _formatted(amount: int, currency: str, locale: str) -> str:
    """Babel takes about 50 µs an amount, and a page of payments shows the same few fees
    many times over."""
    return format_currency(Decimal(amount) / 100, currency, locale=locale)
