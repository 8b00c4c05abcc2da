"""Which code may import which, read from the source with ``ast`` (every ``import`` and
``from ... import``, at any depth, and ``importlib.import_module("...")`` with a literal name).

- The product (``vcpay/``, ``workers/``, ``wsgi.py``) never imports the stand-ins
  (``sandbox/``), and the stand-ins never import the product: they meet over HTTP and SMTP.
- Only the adapters in ``vcpay/integrations/`` import the ``stripe`` and ``jira`` libraries.
- The wheel carries the product only.
- The call screens host apps: ``vcpay/calls`` imports nothing of ``vcpay.payments``, and the
  call screens' templates name no payment template or route (an app depends on calls, never
  the reverse).
"""

import ast
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("vcpay", "workers")
STANDINS = ("sandbox",)
SERVICE_LIBRARIES = ("stripe", "jira")
ADAPTERS = ROOT / "vcpay" / "integrations"


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def product_files() -> list[Path]:
    return [*python_files(*PRODUCT), ROOT / "wsgi.py"]


def module_of(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """(line, module) for every module ``path`` imports, relative imports made absolute."""
    module = module_of(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            yield node.lineno, base
            # ``from vcpay import payments`` imports ``vcpay.payments``: each name may be one.
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"
        elif isinstance(node, ast.Call) and _imports_by_name(node):
            yield node.lineno, str(node.args[0].value)


def _imports_by_name(call: ast.Call) -> bool:
    """``importlib.import_module("x")``, ``import_module("x")`` or ``__import__("x")``."""
    func = call.func
    named = (isinstance(func, ast.Attribute) and func.attr == "import_module") or (
        isinstance(func, ast.Name) and func.id in ("import_module", "__import__")
    )
    return named and bool(call.args) and isinstance(call.args[0], ast.Constant)


def top_level(module: str) -> str:
    return module.split(".")[0]


def within(module: str, packages: tuple[str, ...]) -> bool:
    """Whether ``module`` is one of ``packages`` (dotted names, ``vcpay.payments``) or in one."""
    return any(module == package or module.startswith(f"{package}.") for package in packages)


def offences(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    """Each import in ``files`` of a module in one of the ``forbidden`` packages."""
    return [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in files
        for line, module in imported(path)
        if within(module, forbidden)
    ]


def test_the_walk_sees_every_kind_of_import(tmp_path):
    package = tmp_path / "vcpay" / "feature"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    module = package / "views.py"
    module.write_text(
        "import sandbox.jira\n"
        "from sandbox import demo\n"
        "from . import models\n"
        "from ..integrations import stripe_api\n"
        "def late():\n"
        "    import stripe\n"
        "    from jira import JIRA\n"
        "    importlib.import_module('sandbox.stripe')\n"
    )

    found = [name for _, name in imported(module, root=tmp_path)]

    assert found == [
        "sandbox.jira",
        "sandbox",
        "sandbox.demo",
        "vcpay.feature",
        "vcpay.feature.models",
        "vcpay.integrations",
        "vcpay.integrations.stripe_api",
        "stripe",
        "jira",
        "jira.JIRA",
        "sandbox.stripe",
    ]


def test_the_product_never_imports_the_stand_ins():
    assert offences(product_files(), STANDINS) == []


def test_the_stand_ins_never_import_the_product():
    assert offences(python_files(*STANDINS), PRODUCT) == []


def test_calls_imports_nothing_of_payments():
    assert offences(python_files("vcpay/calls"), ("vcpay.payments",)) == []


def test_the_call_screens_templates_reach_no_payment_template_or_route():
    """What the call screens show of an app is what its own templates render."""
    payments = re.compile(r"""["']payments[./]""")
    offending = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("calls", "guest")
        for path in sorted((ROOT / "vcpay" / "templates" / folder).glob("*"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if payments.search(line)
    ]
    assert offending == []


def test_only_the_adapters_import_the_stripe_and_jira_libraries():
    outside = [path for path in product_files() if ADAPTERS not in path.parents]
    assert offences(outside, SERVICE_LIBRARIES) == []


@pytest.mark.parametrize("folder", [*PRODUCT, *STANDINS])
def test_every_module_is_read(folder):
    """A module the walk could not parse would hide its imports."""
    files = python_files(folder)
    assert files
    for path in files:
        list(imported(path))


def test_the_wheel_carries_the_product_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = project["tool"]["setuptools"]["packages"]["find"]

    packages = find_packages(str(ROOT), include=found["include"])

    assert {top_level(package) for package in packages} == set(PRODUCT)
