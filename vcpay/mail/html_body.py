"""The HTML part of an email, written from its plain text.

Each email is written once, as text (``templates/mail/*.txt``); its HTML part says exactly
the same, escaped: paragraphs where the text has blank lines, line breaks where it has
line ends, and its web addresses as links. So the two parts can never tell different stories
and every translation serves both.
"""

import re

from markupsafe import Markup, escape

# An address ends before a space or a character that cannot be in one; a full stop or a
# closing bracket at its end belongs to the sentence.
WEB_ADDRESS = re.compile(r"https?://[^\s<>\"']+")
SENTENCE_END = ".,;:!?)"

PAGE = Markup(
    "<!DOCTYPE html>\n"
    '<html lang="{lang}">\n'
    "<head>\n"
    '<meta charset="utf-8">\n'
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    "<title>{title}</title>\n"
    "</head>\n"
    '<body style="margin:0;padding:16px;font-family:Arial,Helvetica,sans-serif;'
    'font-size:16px;line-height:1.5;color:#1a1a1a;overflow-wrap:anywhere">\n'
    "{paragraphs}\n"
    "</body>\n"
    "</html>\n"
)


def html_from_text(text: str, title: str, lang: str = "en") -> str:
    """The whole HTML document for ``text``; ``lang`` is a Babel locale (``sr_Cyrl``)."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text.strip()) if p.strip()]
    body = Markup("\n").join(_paragraph(p) for p in paragraphs)
    return str(PAGE.format(lang=lang.replace("_", "-"), title=title, paragraphs=body))


def _paragraph(paragraph: str) -> Markup:
    lines = (_line(line) for line in paragraph.strip("\n").splitlines())
    return Markup('<p style="margin:0 0 1em">{}</p>').format(Markup("<br>\n").join(lines))


def _line(line: str) -> Markup:
    parts, start = [], 0
    for found in WEB_ADDRESS.finditer(line):
        address = found.group().rstrip(SENTENCE_END)
        parts.append(escape(line[start : found.start()]))
        parts.append(Markup('<a href="{0}">{0}</a>').format(address))
        start = found.start() + len(address)
    parts.append(escape(line[start:]))
    return Markup("").join(parts)
