"""Languages: the locale comes from the person's choice, then their browser."""

from flask import current_app, has_request_context, request, session
from flask_login import current_user

# Babel identifiers; Serbian is offered in both of its scripts.
LANGUAGES = {
    "en": "English",
    "sr_Cyrl": "Српски (ћирилица)",
    "sr_Latn": "Srpski (latinica)",
}


def select_locale() -> str:
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = session.get("locale")
    if chosen in LANGUAGES:
        return chosen
    if current_user and current_user.is_authenticated and current_user.locale in LANGUAGES:
        return current_user.locale
    return browser_locale(request.accept_languages)


def browser_locale(accepted) -> str:
    """The best of ours for an ``Accept-Language`` header, in its order of preference; else
    English. Serbian is Cyrillic unless the tag names Latin script (``sr-Latn``, ``sr-Latn-RS``);
    a region (``sr-RS``, ``en-AU``) does not matter; a language refused with ``q=0`` is not used."""
    for tag, quality in accepted:
        if quality <= 0:
            continue
        match = _ours(tag.lower().replace("_", "-").split("-"))
        if match:
            return match
    return "en"


def _ours(subtags: list[str]) -> str | None:
    if subtags[0] == "en":
        return "en"
    if subtags[0] == "sr":
        return "sr_Latn" if "latn" in subtags[1:] else "sr_Cyrl"
    return None


def html_lang(locale: str) -> str:
    """The BCP 47 tag for ``<html lang>``: sr_Latn becomes sr-Latn."""
    return locale.replace("_", "-")


# Serbian Cyrillic to Latin (gajica): one letter each, except the three that become two.
_CYRILLIC = "абвгдђежзијклљмнњопрстћуфхцчџш"
_GAJICA = "a b v g d đ e ž z i j k l lj m n nj o p r s t ć u f h c č dž š".split()  # noqa: SIM905
_LATIN = dict(zip(_CYRILLIC, _GAJICA, strict=True))
_LATIN.update({cyr.upper(): lat.capitalize() for cyr, lat in _LATIN.items()})


def to_latin(text: str) -> str:
    """The same Serbian text in Latin script; anything else (placeholders, names) unchanged."""
    return "".join(_LATIN.get(character, character) for character in text)


# Stripe Checkout's languages for ours (docs.stripe.com/js/appendix/supported_locales).
# Checkout has no Serbian in either script: Croatian is the closest it offers, the same
# language as far as a card form goes and in the Latin script every Serbian reader reads,
# where English would be a foreign language. vcpay's English is Australian: en-GB shares its
# spelling and day-first dates.
STRIPE_CHECKOUT_LOCALES = {"en": "en-GB", "sr_Cyrl": "hr", "sr_Latn": "hr"}


def checkout_locale(readers: set[str]) -> str:
    """What Stripe Checkout is asked to speak for the people who may pay: theirs when they
    share one language vcpay knows, else ``auto`` (Stripe follows each browser)."""
    spoken = {STRIPE_CHECKOUT_LOCALES.get(locale, "auto") for locale in readers}
    return spoken.pop() if len(spoken) == 1 else "auto"
