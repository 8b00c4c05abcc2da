"""Amounts as Stripe keeps them (integers in the currency's minor unit) and as Checkout shows
them to the person paying (``A$85.00``)."""

# Currencies the stand-in takes, with the prefix Checkout shows for an en-AU customer.
SYMBOLS = {
    "aud": "A$",
    "nzd": "NZ$",
    "usd": "US$",
    "cad": "CA$",
    "sgd": "SGD\u00a0",
    "gbp": "£",
    "eur": "€",
    "jpy": "¥",
}
ZERO_DECIMAL = frozenset({"jpy"})
CURRENCIES = tuple(SYMBOLS)
MINIMUM_AMOUNT = 50  # Stripe's floor is $0.50 US or its equivalent; one floor keeps it simple
MAXIMUM_AMOUNT = 99_999_999  # "up to eight digits"


def formatted(amount: int, currency: str) -> str:
    """``8500, "aud"`` → ``A$85.00``."""
    currency = currency.lower()
    prefix = SYMBOLS.get(currency, currency.upper() + "\u00a0")
    if currency in ZERO_DECIMAL:
        return f"{prefix}{amount:,}"
    return f"{prefix}{amount // 100:,}.{amount % 100:02d}"
