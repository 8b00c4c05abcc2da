"""Which parts of vcpay may import which, read from the source with ``ast``."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ROOT / "vcpay"


def imported_modules(path: Path, root: Path = ROOT) -> set[str]:
    """Every module a file imports, at the top or inside a function, relative ones resolved:
    ``from vcpay import payments`` counts as importing ``vcpay.payments``."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def test_calls_imports_nothing_of_payments():
    """The call screens host apps; an app depends on calls, never the reverse."""
    offending = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((PRODUCT / "calls").rglob("*.py"))
        for module in imported_modules(path)
        if within(module, "vcpay.payments")
    }
    assert not offending, sorted(offending)


def test_the_call_screens_templates_reach_no_payment_template_or_route():
    """What the call screens show of an app is what its own templates render."""
    payments = re.compile(r"""["']payments[./]""")
    offending = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("calls", "guest")
        for path in sorted((PRODUCT / "templates" / folder).glob("*"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if payments.search(line)
    ]
    assert not offending, offending


def test_the_rule_sees_imports_inside_functions_and_relative_ones(tmp_path):
    calls = tmp_path / "vcpay" / "calls"
    calls.mkdir(parents=True)
    (calls / "example.py").write_text(
        "def late():\n    from ..payments import services\n"
        "import vcpay.payments.models\nfrom vcpay import payments\n"
    )
    found = imported_modules(calls / "example.py", root=tmp_path)
    assert {"vcpay.payments.services", "vcpay.payments.models", "vcpay.payments"} <= found
