"""Names one guess finds: a module's name says what it holds, wherever it is.

Several feature packages may each have a module of the same name only when the name is a
role every feature can play (its ``views``, its ``models``, the ``stripe_handlers`` it
registers...); any other name belongs to one module, so a search for it finds one thing.
"Gateway" means the Payment Gateway a clinic has switched on, never the Stripe adapter,
which is ``StripeApi`` in ``vcpay/integrations/stripe_api.py``.
"""

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("vcpay", "workers")
# The roles a feature package's modules play; each such name means the same in every package.
ROLES = {
    "__init__",
    "cli",
    "forms",
    "models",
    "services",
    "stripe_handlers",
    "tasks",
    "views",
}
# Where "gateway" appears in an identifier, it must be one of these (the feature).
FEATURE_WORDS = re.compile(r"^(enable_gateway|gateway_enabled(_at|_by_request_id)?|gateway)$")


def product_modules(root: Path = ROOT) -> list[Path]:
    return sorted(path for folder in PRODUCT for path in (root / folder).rglob("*.py"))


def names_shared_outside_roles(root: Path = ROOT) -> dict[str, list[str]]:
    places = defaultdict(list)
    for path in product_modules(root):
        places[path.stem].append(str(path.relative_to(root)))
    return {name: paths for name, paths in places.items() if len(paths) > 1 and name not in ROLES}


def test_only_roles_share_a_module_name():
    assert names_shared_outside_roles() == {}


def test_a_shared_name_that_is_no_role_is_caught(tmp_path):
    for package in ("one", "two"):
        (tmp_path / "vcpay" / package).mkdir(parents=True)
        (tmp_path / "vcpay" / package / "links.py").write_text("")
        (tmp_path / "vcpay" / package / "views.py").write_text("")
    assert names_shared_outside_roles(tmp_path) == {
        "links": ["vcpay/one/links.py", "vcpay/two/links.py"]
    }


def identifiers(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.update(part for part in (node.name, node.asname) if part)
    return names


def test_gateway_names_only_the_feature():
    misnamed = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in product_modules()
        for name in identifiers(path)
        if "gateway" in name.lower() and not FEATURE_WORDS.match(name)
    }
    assert misnamed == set(), "the Stripe adapter is StripeApi; 'gateway' is the feature"


LONG_MODULE = 300
REASON = "Longer than most modules because"


def test_a_long_module_says_why_in_its_first_comment():
    """Small files are the rule; a product module over 300 lines says why it is one piece."""
    unexplained = []
    for path in product_modules():
        text = path.read_text(encoding="utf-8")
        docstring = ast.get_docstring(ast.parse(text)) or ""
        if text.count("\n") > LONG_MODULE and REASON not in " ".join(docstring.split()):
            unexplained.append(str(path.relative_to(ROOT)))
    assert unexplained == []
