"""A browser's name as a person would say it ("Firefox on Windows"), read simply from its
User-Agent: enough to tell one's own sessions apart, never used to decide anything."""

import re

from flask_babel import gettext as _

# Order matters: Edge and Opera say "Chrome" too, and Chrome says "Safari".
BROWSERS = (
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/")),
    ("Opera", re.compile(r"\bOPR/|\bOpera\b")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/")),
    ("Firefox", re.compile(r"\bFirefox/|\bFxiOS/")),
    ("Chrome", re.compile(r"\b(?:Headless)?Chrome/|\bCriOS/|\bChromium/")),
    ("Safari", re.compile(r"\bSafari/")),
)
SYSTEMS = (
    ("iPhone", re.compile(r"\biPhone\b")),
    ("iPad", re.compile(r"\biPad\b")),
    ("Android", re.compile(r"\bAndroid\b")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"\bWindows\b")),
    ("macOS", re.compile(r"\bMac OS X\b|\bMacintosh\b")),
    ("Linux", re.compile(r"\bLinux\b")),
)


def _first(table, text: str) -> str | None:
    return next((name for name, pattern in table if pattern.search(text)), None)


def browser_name(user_agent: str | None) -> str:
    """ "Firefox on Windows", "Safari on iPhone", "Chrome", or "Unknown browser"."""
    text = user_agent or ""
    browser, system = _first(BROWSERS, text), _first(SYSTEMS, text)
    if browser and system:
        return _("%(browser)s on %(system)s", browser=browser, system=system)
    if browser or system:
        return browser or _("A browser on %(system)s", system=system)
    return _("Unknown browser")
