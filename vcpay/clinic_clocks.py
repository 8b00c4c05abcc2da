"""Times as a clinic's clocks show them.

Each clinic has a time zone (an IANA name, ``Clinic.time_zone``); vcpay stores UTC and shows
every moment, on pages, in emails and in exports, on the clinic's clocks, in the reader's
language, with the zone named as the reader's language abbreviates it ("1 Dec 2026, 3:37 pm
AEDT"). One place, so a page, an email and a CSV of the same payment never disagree.

English is written as Australians write it (Babel's ``en_AU``: day before month), only here:
the language chosen stays ``en``. Where no clinic applies, an organisation's moments are on
its first clinic's clocks, and anything else on ``VCPAY_DEFAULT_TIMEZONE``'s.
"""

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import (
    format_date,
    format_time,
    get_datetime_format,
    get_timezone_gmt,
    get_timezone_name,
)
from flask import current_app, has_app_context
from flask_babel import get_locale

# The language vcpay offers → the Babel locale its dates and times are written in.
FORMATTING_LOCALES = {"en": "en_AU"}


@lru_cache(maxsize=64)
def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):  # a name this machine's zone database lacks
        return ZoneInfo("UTC")


def default_zone_name() -> str:
    return current_app.config["BABEL_DEFAULT_TIMEZONE"] if has_app_context() else "UTC"


def zone_name_of(place) -> str:
    """The IANA name of a clinic's zone; an organisation's is its first clinic's; none (or
    an organisation without clinics) is the default."""
    name = getattr(place, "time_zone", None)
    if name is None and getattr(place, "clinics", None):
        name = place.clinics[0].time_zone
    return name or default_zone_name()


def clinic_zone(clinic) -> ZoneInfo:
    return zone_named(zone_name_of(clinic))


@lru_cache(maxsize=16)
def _babel_locale(name: str) -> Locale:
    return Locale.parse(FORMATTING_LOCALES.get(name, name))


def reader_locale() -> Locale:
    """The locale dates are written in for whoever reads now (a page's, or an email's)."""
    chosen = get_locale() if has_app_context() else None
    if chosen is None:
        chosen = current_app.config["BABEL_DEFAULT_LOCALE"] if has_app_context() else "en"
    return _babel_locale(str(chosen))


def zone_abbreviation(local: datetime, locale: Locale) -> str:
    """The zone at that moment as the locale abbreviates it ("AEDT", "AEST", "AWST"); where it
    has no abbreviation (Serbian has none for Australia's), Babel's "GMT+11:00"."""
    name = get_timezone_name(local, "short", locale=locale)
    if name == get_timezone_gmt(local, "short", locale=locale):  # "+1100": no abbreviation
        return get_timezone_gmt(local, "long", locale=locale)
    return name


def clinic_moment(moment: datetime | None, clinic, format: str = "medium") -> str:
    """A moment as the clinic's clocks showed it, its zone named, in the reader's language
    ("" for none): "1 Dec 2026, 3:37 pm AEDT" (medium) or "1/12/26, 3:37 pm AEDT" (short)."""
    if moment is None:
        return ""
    locale = reader_locale()
    local = moment.astimezone(clinic_zone(clinic))
    return (
        get_datetime_format(format, locale=locale)
        .replace("'", "")
        .replace("{0}", _time_of_day(local, locale))
        .replace("{1}", format_date(local.date(), format, locale=locale))
    )


def clinic_clock(moment: datetime | None, clinic) -> str:
    """Only the time of day on the clinic's clocks, its zone named: "3:37 pm AEDT"."""
    if moment is None:
        return ""
    locale = reader_locale()
    return _time_of_day(moment.astimezone(clinic_zone(clinic)), locale)


def clinic_day(moment: datetime | None, clinic) -> str:
    """The clinic's calendar day of a moment, in the reader's language: "1 Dec 2026"."""
    if moment is None:
        return ""
    return reader_day(moment.astimezone(clinic_zone(clinic)).date())


def reader_day(day: date, format: str = "medium") -> str:
    """A calendar day (already the clinic's) in the reader's language."""
    return format_date(day, format, locale=reader_locale())


def iso_time(moment: datetime | None, zone: ZoneInfo) -> str:
    """For machines and spreadsheets (CSV, the service desk): ISO 8601 with the zone's offset,
    which says which: "2026-12-01T15:42:31+11:00"."""
    return "" if moment is None else moment.astimezone(zone).isoformat(timespec="seconds")


def clinic_iso(moment: datetime | None, clinic) -> str:
    return iso_time(moment, clinic_zone(clinic))


def clinic_time(moment: datetime | None, clinic) -> str:
    """The template filter's spelling of ``clinic_moment``: ``moment|clinic_time(clinic)``."""
    return clinic_moment(moment, clinic)


def _time_of_day(local: datetime, locale: Locale) -> str:
    # The locale's short time (no seconds), then the zone: "3:37 pm AEDT", "15:37 GMT+11:00".
    clock = format_time(local, "short", locale=locale)
    return f"{clock} {zone_abbreviation(local, locale)}"
