"""The Serbian catalogues: complete, in step with the code, the same in both scripts, used."""

from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from vcpay.i18n import to_latin
from vcpay.translations_cli import EXTRACT, ROOT, _pybabel, catalogue

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


@pytest.mark.parametrize(("accept", "locale"), [("sr", "sr_Cyrl"), ("sr-Latn", "sr_Latn")])
def test_pages_speak_the_language_asked_for(client, accept, locale):
    page = client.get("/sign-in", headers={"Accept-Language": accept}).get_data(as_text=True)
    words = translated(locale)
    for english in ("Sign in", "Password"):
        assert words[english] in page
        assert f">{english}<" not in page
