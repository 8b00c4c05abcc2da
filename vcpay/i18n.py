"""Languages: the locale comes from the person's choice, then their browser."""

from flask import current_app, has_request_context, request, session
from flask_login import current_user

# Babel identifiers; Serbian is offered in both of its scripts.
LANGUAGES = {
    "en": "English",
    "sr_Cyrl": "Српски (ћирилица)",
    "sr_Latn": "Srpski (latinica)",
}

# Browser language tags to the identifiers above; plain "sr" is written in Cyrillic.
_BROWSER_TAGS = {"en": "en", "sr": "sr_Cyrl", "sr-cyrl": "sr_Cyrl", "sr-latn": "sr_Latn"}


def select_locale() -> str:
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    chosen = session.get("locale")
    if chosen in LANGUAGES:
        return chosen
    if current_user and current_user.is_authenticated and current_user.locale in LANGUAGES:
        return current_user.locale
    for tag, _quality in request.accept_languages:
        match = _BROWSER_TAGS.get(tag.lower()) or _BROWSER_TAGS.get(tag.split("-")[0].lower())
        if match:
            return match
    return "en"


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
