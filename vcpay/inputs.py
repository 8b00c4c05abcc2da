"""What vcpay accepts from outside, checked at the edge so no view or database sees worse.

Before any view runs, a request whose path, query or form carries a control character is
refused (PostgreSQL refuses NUL, and nothing legitimate needs the rest). Ids in paths, forms
and headers are ASCII digits within PostgreSQL's ``integer``, on every backend.
"""

import json
import re
import unicodedata
from typing import Any

from flask import Flask, request
from flask_babel import lazy_gettext as _l
from werkzeug.routing import IntegerConverter
from wtforms import FieldList
from wtforms.validators import ValidationError

from vcpay.errors import render_error

MAX_ID = 2**31 - 1  # PostgreSQL's integer; SQLite's are wider, and the same rule holds there
ID = re.compile(r"[0-9]{1,10}")  # not \d, which matches digits of every script
# Any C0 control; form values may hold tab, CR and LF (a multi-line note).
CONTROL = re.compile(r"[\x00-\x1f]")
CONTROL_IN_VALUE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Inside JSON a NUL can only be written as this escape: where it is absent, none can hide.
NUL_ESCAPE = "\\u0000"
# Paths whose handlers read the raw body themselves (a signature covers its exact bytes).
RAW_BODY_PREFIXES = ("/webhooks/",)

CONTROL_MESSAGE = _l(
    "What you sent contains a control character (such as a NUL byte) that vcpay does not "
    "accept. Remove it and try again."
)
FORM_SHAPE_MESSAGE = _l("Send the form as fields with text values.")
TEXT_CONTROL_MESSAGE = _l("Write this on one line, without tabs or other control characters.")


class JsonRefused(ValueError):
    """A JSON body vcpay will not read: not JSON, too deeply nested, or holding a NUL."""


def parse_id(text: Any) -> int | None:
    """A database id from a form or header, or None: ASCII digits, at most ``MAX_ID``."""
    if not isinstance(text, str) or not ID.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


class DatabaseIdConverter(IntegerConverter):
    """Flask's ``int`` converter, held to ids the database can look up: beyond, a 404."""

    regex = ID.pattern

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False) -> None:
        super().__init__(map, fixed_digits, min, max, signed)


class BoundedFieldList(FieldList):
    """A FieldList that takes only ASCII entry numbers: WTForms takes whatever
    ``str.isdigit`` does ("clinics-²-clinic_id") and then fails to read it as a number."""

    def _extract_indices(self, prefix, formdata):
        offset = len(prefix) + 1
        for key in formdata:
            if key.startswith(prefix):
                index = parse_id(key[offset:].split(self._field_separator, 1)[0])
                if index is not None:
                    yield index


def has_control_character(text: str) -> bool:
    """Any character of Unicode's control category (C0, DEL, C1), tab and newlines included."""
    return any(unicodedata.category(character) == "Cc" for character in text)


class PlainText:
    """WTForms validator for one-line free text (a title, a name, a description)."""

    def __init__(self, message=TEXT_CONTROL_MESSAGE):
        self.message = message

    def __call__(self, form, field) -> None:
        if isinstance(field.data, str) and has_control_character(field.data):
            raise ValidationError(str(self.message))


def read_json(text: str) -> Any:
    """A JSON document safe to store and to read again: raises ``JsonRefused`` for text that
    is not JSON, nests deeper than Python can parse, or holds a NUL (PostgreSQL refuses it)."""
    try:
        document = json.loads(text)
    except RecursionError:
        raise JsonRefused("The body is nested too deeply.") from None
    except ValueError:
        raise JsonRefused("The body is not JSON.") from None
    if NUL_ESCAPE in text and _holds_nul(document):
        raise JsonRefused("The body contains a NUL character.")
    return document


def _holds_nul(document: Any) -> bool:
    """Walked without recursion: no document that parsed can exhaust the stack here."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, str) and "\x00" in value:
            return True
        if isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


def _refusal(message) -> tuple:
    return render_error(400, str(message))


def _query_and_path_refusal():
    if CONTROL.search(request.path):
        return _refusal(CONTROL_MESSAGE)
    for name, value in request.args.items(multi=True):
        if CONTROL.search(name) or CONTROL.search(value):
            return _refusal(CONTROL_MESSAGE)
    return None


def _form_refusal():
    for name, value in request.form.items(multi=True):
        if CONTROL.search(name) or CONTROL_IN_VALUE.search(value):
            return _refusal(CONTROL_MESSAGE)
    return None


def _json_form_refusal():
    """Flask-WTF reads a JSON body as the form: it must be names with text values."""
    body = request.get_data(cache=True)
    if not body:
        return None
    try:
        document = read_json(body.decode("utf-8"))
    except UnicodeDecodeError:
        return _refusal(FORM_SHAPE_MESSAGE)
    except JsonRefused as refused:
        return _refusal(refused)
    if not isinstance(document, dict) or not all(
        isinstance(value, str) for value in document.values()
    ):
        return _refusal(FORM_SHAPE_MESSAGE)
    for name, value in document.items():
        if CONTROL.search(name) or CONTROL_IN_VALUE.search(value):
            return _refusal(CONTROL_MESSAGE)
    return None


def refuse_control_characters():
    """Runs before every view: a 400 (HTML for people, JSON for API clients) or nothing."""
    refusal = _query_and_path_refusal()
    if refusal is not None or request.path.startswith(RAW_BODY_PREFIXES):
        return refusal
    if request.is_json:
        return _json_form_refusal()
    return _form_refusal()


def register_input_checks(app: Flask) -> None:
    """Before the blueprints: rules bind their converters when they are added."""
    app.url_map.converters["int"] = DatabaseIdConverter
    app.before_request(refuse_control_characters)
