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

MAX_ID = 2**31 - 1  # PostgreSQL's integer; SQLite's are wider, and the same rule holds there
ID = re.compile(r"[0-9]{1,10}")  # not \d, which matches digits of every script
# Any C0 control; form values may hold tab, CR and LF (a multi-line note).
CONTROL = re.compile(r"[\x00-\x1f]")
CONTROL_IN_VALUE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Deeper than any event Stripe or Jira sends, and far from Python's recursion limit.
MAX_JSON_DEPTH = 64
# Paths whose handlers read the raw body themselves (a signature covers its exact bytes).
RAW_BODY_PREFIXES = ("/webhooks/",)

CONTROL_MESSAGE = _l(
    "What you sent contains a control character (such as a NUL byte) that vcpay does not "
    "accept. Remove it and try again."
)
FORM_SHAPE_MESSAGE = _l("Send the form as fields with text values.")
TEXT_CONTROL_MESSAGE = _l("Write this on one line, without tabs or other control characters.")


class JsonRefused(ValueError):
    """A JSON body vcpay will not read: not JSON, too deep, or holding a NUL."""


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


def read_json(body: bytes | str) -> Any:
    """Parse a JSON body that is then safe to walk and to store: raises ``JsonRefused``."""
    try:
        document = json.loads(body)
    except RecursionError:
        raise JsonRefused("The body is nested too deeply.") from None
    except ValueError:
        raise JsonRefused("The body is not JSON.") from None
    _check_json(document)
    return document


def _check_json(document: Any) -> None:
    """Depth and NUL checked without recursion, so no document can exhaust the stack."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            raise JsonRefused("The body is nested too deeply.")
        if isinstance(value, str) and "\x00" in value:
            raise JsonRefused("The body contains a NUL character.")
        if isinstance(value, dict):
            pending.extend((key, depth) for key in value)
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)


def _refusal(message) -> tuple:
    from vcpay.errors import render_error

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
        document = read_json(body)
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
