"""The Serbian catalogues: complete, in step with the code, the same in both scripts, used."""

import ast
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from jinja2 import Environment

from vcpay.i18n import browser_locale, checkout_locale, to_latin
from vcpay.translations_cli import EXTRACT, ROOT, _pybabel, catalogue

# What these tests check happens before or beside any query: SQLite alone runs them.
pytestmark = pytest.mark.any_database

LOCALES = ("sr_Cyrl", "sr_Latn")


def read(path: Path):
    with path.open("rb") as source:
        return read_po(source)


def translated(locale: str) -> dict[str, str]:
    return {m.id: m.string for m in read(catalogue(locale)) if m.id}


def test_the_catalogues_hold_every_string_in_the_code(tmp_path):
    template = tmp_path / "messages.pot"
    _pybabel("extract", *EXTRACT, "-o", str(template), str(ROOT))
    in_code = {m.id for m in read(template) if m.id}
    for locale in LOCALES:
        missing = in_code - set(translated(locale))
        assert not missing, f"run `make translations` and translate: {sorted(missing)[:5]}"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_string_is_translated_with_the_same_placeholders(locale):
    messages = read(catalogue(locale))
    assert [m.id for m in messages if m.id and (not m.string or m.fuzzy)] == []
    assert [(m.id, errors) for m, errors in messages.check()] == []


def test_the_latin_catalogue_is_the_cyrillic_one_letter_for_letter():
    cyrillic, latin = translated("sr_Cyrl"), translated("sr_Latn")
    expected = {key: to_latin(text) for key, text in cyrillic.items()}
    assert latin == expected, "run `make translations` to write the Latin catalogue again"


def test_latin_script_keeps_placeholders_and_names():
    assert (
        to_latin("Љиљана плаћа %(amount)s за Stripe, Џ")
        == "Ljiljana plaća %(amount)s za Stripe, Dž"
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_the_compiled_catalogues_are_current(locale):
    source = catalogue(locale)
    compiled = source.with_suffix(".mo")
    assert compiled.exists() and compiled.stat().st_mtime >= source.stat().st_mtime, (
        "run `make install` to compile the catalogues"
    )


@pytest.mark.parametrize(
    ("accept", "locale"),
    [
        ("sr", "sr_Cyrl"),
        ("sr-Latn", "sr_Latn"),
        ("sr-RS,sr;q=0.9,en;q=0.8", "sr_Cyrl"),
        ("sr-Latn-RS,sr;q=0.9", "sr_Latn"),
    ],
)
def test_pages_speak_the_language_asked_for(client, accept, locale):
    page = client.get("/sign-in", headers={"Accept-Language": accept}).get_data(as_text=True)
    words = translated(locale)
    for english in ("Sign in", "Password"):
        assert words[english] in page
        assert f">{english}<" not in page


# Where a string reaches a person, by the callee: the position of the message among its
# arguments, and the keywords that carry one.
SHOWN_POSITIONAL = {
    "flash": 0,
    "render_error": 1,
    "FilterRefused": 0,
    "PaymentRefused": 0,
    "RepeatUnconfirmed": 0,
    "EnablementError": 0,
    "_move_or_refuse": 2,
    "AmountInvalid": 0,
    "RefundRefused": 0,
    "LinkingFailed": 0,
    "ReceiptLinkInvalid": 0,
    "ValidationError": 0,
}
SHOWN_KEYWORDS = {"message", "description", "label"}
# Text that is the same in every language: the product's name.
SAME_IN_EVERY_LANGUAGE = {"vcpay"}
# Written into the service desk's Jira request for its team, who read English.
NOT_FOR_VCPAY_READERS = {"enablement/jira_description.txt"}
TEMPLATES = ROOT / "vcpay" / "templates"
VISIBLE_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "label"}
HOLE = "\x00"  # where the template's own code was


def _callee(call: ast.Call) -> str:
    function = call.func
    return getattr(function, "id", None) or getattr(function, "attr", "")


def _unmarked(node: ast.AST) -> bool:
    """A literal with words in it, or an f-string: never through gettext."""
    if isinstance(node, ast.JoinedStr):
        return True
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and _has_words(node.value)


def _has_words(text: str) -> bool:
    for name in SAME_IN_EVERY_LANGUAGE:
        text = re.sub(rf"\b{name}\b", "", text)
    return bool(re.search(r"[^\W\d_]", text))


def unmarked_in_python(source: str) -> list[tuple[int, str]]:
    found = []
    for call in ast.walk(ast.parse(source)):
        if not isinstance(call, ast.Call):
            continue
        callee = _callee(call)
        shown = []
        if callee in SHOWN_POSITIONAL and len(call.args) > SHOWN_POSITIONAL[callee]:
            shown.append(call.args[SHOWN_POSITIONAL[callee]])
        if callee.endswith("Field") and call.args:  # a form field's label
            shown.append(call.args[0])
        if callee in SHOWN_POSITIONAL or callee.endswith("Field") or callee[:1].isupper():
            shown += [k.value for k in call.keywords if k.arg in SHOWN_KEYWORDS]
        found += [(node.lineno, ast.unparse(node)) for node in shown if _unmarked(node)]
    return found


class _VisibleText(HTMLParser):
    """Text a person sees or hears: element text and the attributes read out, not scripts."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in ("script", "style")
        self.found += [value for name, value in attrs if name in VISIBLE_ATTRIBUTES and value]

    def handle_endtag(self, tag):
        self.hidden -= tag in ("script", "style")

    def handle_data(self, data):
        if not self.hidden:
            self.found.append(data)


def unmarked_in_template(source: str, html: bool = True) -> list[str]:
    """Words in a template outside its ``{{ }}`` and ``{% %}`` and outside ``{% trans %}``
    blocks: nothing translates them."""
    pieces, in_trans, last_name = [], 0, None
    for _line, kind, value in Environment(autoescape=True, extensions=["jinja2.ext.i18n"]).lex(
        source
    ):
        if kind == "whitespace":
            continue
        if kind == "name" and last_name == "block_begin":
            in_trans += {"trans": 1, "endtrans": -1}.get(value, 0)
        last_name = kind
        pieces.append(value if kind == "data" and not in_trans else HOLE)
    text = "".join(pieces)
    if html:
        parser = _VisibleText()
        parser.feed(text)
        parser.close()
        texts = parser.found
    else:
        texts = [text]
    return [part.strip() for t in texts for part in t.split(HOLE) if _has_words(part)]


def test_python_marks_every_string_it_shows_people():
    found = {}
    for path in sorted((ROOT / "vcpay").rglob("*.py")):
        for line, literal in unmarked_in_python(path.read_text(encoding="utf-8")):
            found[f"{path.relative_to(ROOT)}:{line}"] = literal
    assert found == {}, "mark these with _() or _l()"


def test_templates_mark_every_word_people_read():
    found = {}
    for path in sorted(TEMPLATES.rglob("*.*")):
        name = path.relative_to(TEMPLATES).as_posix()
        if name in NOT_FOR_VCPAY_READERS:
            continue
        words = unmarked_in_template(path.read_text(encoding="utf-8"), path.suffix == ".html")
        if words:
            found[name] = words
    assert found == {}, 'mark these with {{ _("…") }} or {% trans %}'


def test_the_scans_catch_what_they_are_for():
    python = (
        'flash("Saved.", "success")\n'
        'raise EnablementError(f"Sent by {name}.")\n'
        'flash(_("Saved."), "success")\n'
        'name = StringField("Your name", description=_l("As on your card"))\n'
        "render_error(400, refused.message)\n"
    )
    assert unmarked_in_python(python) == [
        (1, "'Saved.'"),
        (2, "f'Sent by {name}.'"),
        (4, "'Your name'"),
    ]
    template = (
        '<p title="Close">{{ _("Hello") }} there</p><script>let a = "x";</script>'
        "{% trans %}Fine{% endtrans %} · vcpay <b>{{ amount }}</b> A$"
    )
    assert unmarked_in_template(template) == ["Close", "there", "A$"]
    assert unmarked_in_template("Hello,\n{{ _('Hi') }}\nvcpay", html=False) == ["Hello,"]


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("sr-RS,sr;q=0.9,en;q=0.8", "sr_Cyrl"),
        ("sr-Cyrl-RS", "sr_Cyrl"),
        ("sr-Latn-RS,en;q=0.5", "sr_Latn"),
        ("sr_Latn", "sr_Latn"),
        ("de-DE,sr-Latn;q=0.7,en;q=0.3", "sr_Latn"),
        ("en-AU,en;q=0.9", "en"),
        ("sr;q=0,en;q=0.5", "en"),
        ("de-DE,fr;q=0.5", "en"),
        ("", "en"),
    ],
)
def test_a_browsers_languages_choose_the_best_of_ours(header, locale):
    from werkzeug.datastructures import LanguageAccept
    from werkzeug.http import parse_accept_header

    assert browser_locale(parse_accept_header(header, LanguageAccept)) == locale


@pytest.mark.parametrize(
    ("readers", "stripe"),
    [
        ({"en"}, "en-GB"),
        ({"sr_Cyrl"}, "hr"),
        ({"sr_Cyrl", "sr_Latn"}, "hr"),
        ({"en", "sr_Cyrl"}, "auto"),
        ({""}, "auto"),
        (set(), "auto"),
    ],
)
def test_stripe_checkout_gets_the_closest_language_it_speaks(readers, stripe):
    assert checkout_locale(readers) == stripe
