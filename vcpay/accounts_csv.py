"""CSV for a clinic's accountant, the same in every export vcpay writes.

UTF-8 with a byte order mark (so spreadsheet programs read any script), Windows line ends,
amounts in dollars with two decimals and no floating point, times in ISO 8601 with the
clinic's offset (``vcpay.clinic_clocks.iso_time``), and every text cell kept from being run
as a formula (CSV injection: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
return gets a leading quote).
"""

import csv
import io
from collections.abc import Iterable
from functools import lru_cache

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: object) -> str:
    """Text as the accountant should see it, never run."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


@lru_cache(maxsize=4096)  # amounts and fees repeat: an export writes four a row
def dollars(cents: int | None) -> str:
    """``-1234`` → ``-12.34``, exactly; empty when the amount is not known."""
    if cents is None:
        return ""
    whole, part = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}{whole}.{part:02d}"


def written(lines: Iterable[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(lines)
    return buffer.getvalue()
