"""Times as a clinic's clocks show them.

Each clinic has a time zone (an IANA name, ``Clinic.time_zone``); vcpay stores UTC and shows
every moment, on pages, in emails and in exports, on the clinic's clocks and in the reader's
language. One place, so a page, an email and a CSV of the same payment never disagree.
"""

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from flask import current_app, has_app_context
from flask_babel import get_locale


@lru_cache(maxsize=64)
def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):  # a name this machine's zone database lacks
        return ZoneInfo("UTC")


def clinic_zone(clinic) -> ZoneInfo:
    return zone_named(clinic.time_zone)


def _locale() -> str:
    chosen = get_locale() if has_app_context() else None
    return str(
        chosen or (current_app.config["BABEL_DEFAULT_LOCALE"] if has_app_context() else "en")
    )


def clinic_moment(moment: datetime | None, clinic, format: str = "medium") -> str:
    """A moment as the clinic's clocks showed it, in the reader's language ("" for none)."""
    if moment is None:
        return ""
    return format_datetime(moment, format, tzinfo=clinic_zone(clinic), locale=_locale())


def clinic_day(moment: datetime | None, clinic) -> str:
    """The clinic's calendar day of a moment, in the reader's language."""
    if moment is None:
        return ""
    return format_date(moment.astimezone(clinic_zone(clinic)).date(), "medium", locale=_locale())


def clinic_time(moment: datetime | None, clinic) -> str:
    """A moment on the clinic's clocks with its zone named, for whoever reads it far from
    the clinic (an email, the refund page): "1 Dec 2026, 11:35:49 pm (Australia/Perth)"."""
    if moment is None:
        return ""
    return f"{clinic_moment(moment, clinic)} ({clinic.time_zone})"
