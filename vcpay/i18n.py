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
