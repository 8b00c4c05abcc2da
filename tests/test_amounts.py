"""What a clinician may type as an amount, and what each refusal says."""

import pytest

from vcpay.payments.amounts import AmountInvalid, format_amount, parse_amount


@pytest.mark.parametrize(
    "typed, cents",
    [
        ("85", 8500),
        ("85.5", 8550),
        ("85.50", 8550),
        ("$85.00", 8500),
        ("1,250.00", 125000),
        ("A$ 1,250", 125000),
        (" 0.50 ", 50),
        ("999,999.99", 99999999),
        ("999999.99", 99999999),
    ],
)
def test_amounts_people_type_are_read_in_cents(typed, cents):
    assert parse_amount(typed) == cents


@pytest.mark.parametrize(
    "typed, message",
    [
        ("", "Enter the amount to request"),
        ("0", "more than zero"),
        ("0.00", "more than zero"),
        ("-5", "more than zero"),
        ("$-5.00", "more than zero"),
        ("0.49", "smallest amount Stripe accepts is A$0.50"),
        ("1,000,000.00", "largest amount Stripe accepts is A$999,999.99"),
        ("85.505", "at most two decimal places"),
        ("eighty", "as a number in dollars and cents"),
        ("85,50", "as a number in dollars and cents"),
        ("1,25.00", "as a number in dollars and cents"),
        ("85.", "as a number in dollars and cents"),
        ("1e3", "as a number in dollars and cents"),
        # Digits of other scripts: Python's \d and Decimal take them, people's banks do not.
        ("\u0668\u0665", "as a number in dollars and cents"),  # Arabic-Indic 85
        ("\uff18\uff15", "as a number in dollars and cents"),  # full-width 85
        ("\uff18\uff15.\uff10\uff10", "as a number in dollars and cents"),  # full-width 85.00
        ("85.\u0665\u0660", "as a number in dollars and cents"),
        ("\u00b2", "as a number in dollars and cents"),
    ],
)
def test_each_refusal_says_what_to_change(app, typed, message):
    with app.test_request_context(), pytest.raises(AmountInvalid) as refused:
        parse_amount(typed)
    assert message in refused.value.message


def test_amounts_are_shown_in_australian_dollars(app):
    with app.test_request_context():
        assert format_amount(8500) == "A$85.00"
        assert format_amount(125000) == "A$1,250.00"
