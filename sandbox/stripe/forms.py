"""Stripe's request encoding: form fields with bracketed keys, decoded into nested values.

``line_items[0][price_data][unit_amount]=5000`` becomes
``{"line_items": [{"price_data": {"unit_amount": "5000"}}]}``; ``types[]=a&types[]=b`` becomes
``{"types": ["a", "b"]}``. Values stay strings: each endpoint reads its own types, as Stripe does.
"""

import re
from collections.abc import Iterable
from typing import Any

KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
SEGMENT = re.compile(r"\[([^\[\]]*)\]")
# Free-form maps: their keys may be digits and must not turn them into lists.
FREE_FORM = frozenset({"metadata"})


class FormError(ValueError):
    """A form that cannot be read as one nested value; ``param`` is the offending key."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


def key_path(key: str) -> list[str]:
    """``a[b][0][]`` → ``["a", "b", "0", ""]``; a key that is not bracketed stays whole."""
    match = KEY.match(key)
    if not match:
        return [key]
    return [match.group(1), *SEGMENT.findall(match.group(2))]


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        _place(root, key, key_path(key), value)
    return {name: _as_lists(name, value) for name, value in root.items()}


def _place(root: dict[str, Any], key: str, path: list[str], value: str) -> None:
    node = root
    for depth, segment in enumerate(path):
        if segment == "":  # "[]" appends
            segment = str(len(node))
        last = depth == len(path) - 1
        if last:
            if isinstance(node.get(segment), dict):
                raise FormError(f"Invalid value for {key}: it is also given as a hash.", key)
            node[segment] = value
            return
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise FormError(f"Invalid hash for {key}: it is also given as a string.", key)
        node = child


def _as_lists(name: str, value: Any) -> Any:
    """Maps keyed 0, 1, 2... are arrays on the wire; turn them back into lists."""
    if not isinstance(value, dict):
        return value
    if name in FREE_FORM:
        return value
    children = {key: _as_lists(key, child) for key, child in value.items()}
    if children and all(key.isdigit() for key in children):
        return [children[key] for key in sorted(children, key=int)]
    return children
