"""Which parameters an endpoint takes, read from the TypedDicts stripe-python generates from
Stripe's own spec (``stripe.params``), so the stand-in refuses what Stripe would refuse:
``Received unknown parameter: line_items[0][price_data][colour]``."""

import re
import sys
from typing import Any

from stripe import RequestOptions

from sandbox.stripe.errors import unknown_parameter

# The library's own options share the TypedDicts; they never go over the wire as parameters.
OPTIONS = RequestOptions.__required_keys__ | RequestOptions.__optional_keys__
NAME = re.compile(r"[A-Z]\w+")


def names(params_class: type) -> tuple[str, ...]:
    """The top-level parameter names of one ``*Params`` TypedDict."""
    keys = params_class.__required_keys__ | params_class.__optional_keys__
    return tuple(sorted(keys - OPTIONS))


def nested_class(params_class: type, name: str) -> type | None:
    """The TypedDict a parameter's value (or each element of it) must follow, if any;
    free-form maps such as ``metadata`` have none."""
    annotation = repr(params_class.__annotations__.get(name))
    module = sys.modules[params_class.__module__]
    found = [
        getattr(module, candidate)
        for candidate in set(NAME.findall(annotation))
        if hasattr(getattr(module, candidate, None), "__optional_keys__")
    ]
    return found[0] if len(found) == 1 else None


def refuse_unknown(params: dict[str, Any], params_class: type, path: str = "") -> None:
    """Raise for the first parameter, at any depth, that the TypedDicts do not name."""
    known = set(names(params_class))
    for name, value in params.items():
        where = f"{path}[{name}]" if path else name
        if name not in known and not (not path and name == "expand"):
            raise unknown_parameter(where)
        inner = nested_class(params_class, name)
        if inner is None:
            continue
        if isinstance(value, dict):
            refuse_unknown(value, inner, where)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    refuse_unknown(item, inner, f"{where}[{index}]")
