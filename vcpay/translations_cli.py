"""``flask --app wsgi translations update``: keep the catalogues in step with the code.

Strings are extracted into ``messages.pot``; the Serbian Cyrillic catalogue is updated from
it (new strings arrive untranslated, for a translator); the Latin catalogue is then written
from the Cyrillic one, letter by letter, so the two scripts never disagree.
"""

from pathlib import Path

import click
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po, write_po

from vcpay.i18n import to_latin

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "vcpay" / "translations"
TEMPLATE = FOLDER / "messages.pot"
EXTRACT = ["-F", str(ROOT / "babel.cfg"), "-k", "_l", "-k", "lazy_gettext", "--no-location"]


def catalogue(locale: str) -> Path:
    return FOLDER / locale / "LC_MESSAGES" / "messages.po"


def _pybabel(*arguments: str) -> None:
    CommandLineInterface().run(["pybabel", "-q", *arguments])


def write_latin_catalogue() -> None:
    with catalogue("sr_Cyrl").open("rb") as source:
        cyrillic = read_po(source, locale="sr_Cyrl")
    cyrillic.locale = "sr_Latn"
    for message in cyrillic:
        if not message.id:
            continue
        if isinstance(message.string, tuple):
            message.string = tuple(to_latin(s) for s in message.string)
        else:
            message.string = to_latin(message.string)
    catalogue("sr_Latn").parent.mkdir(parents=True, exist_ok=True)
    with catalogue("sr_Latn").open("wb") as target:
        write_po(target, cyrillic, omit_header=False, sort_output=True, width=100)


@click.group("translations")
def translations() -> None:
    """The translation catalogues."""


@translations.command("update")
def update() -> None:
    """Extract the strings, update the Cyrillic catalogue, write the Latin one, compile."""
    _pybabel("extract", *EXTRACT, "--sort-output", "-o", str(TEMPLATE), str(ROOT))
    _pybabel(
        "update",
        "-i",
        str(TEMPLATE),
        "-d",
        str(FOLDER),
        "-l",
        "sr_Cyrl",
        "--width",
        "100",
        "--no-fuzzy-matching",  # a new string arrives empty, never as a neighbour's guess
    )
    write_latin_catalogue()
    _pybabel("compile", "-d", str(FOLDER))
    click.echo(f"Catalogues updated in {FOLDER}; translate the empty entries of sr_Cyrl.")
