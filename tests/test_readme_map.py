"""The README's map matches the tree: every package of vcpay is on it, and every file it
names, in the Architecture tree or on the path of a payment, exists where it says."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
PRODUCT = ROOT / "vcpay"


def section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + len(title))
    return README[start : end if end != -1 else None]


def architecture_tree() -> str:
    text = section("## Architecture")
    start = text.index("```\nvcpay/")
    return text[start : text.index("```", start + 3)]


def tree_entries() -> dict[str, str]:
    """Each top-level entry of the tree (``vcpay/payments/``...) and the text beside it."""
    entries: dict[str, str] = {}
    parent, current = "", ""
    for line in architecture_tree().splitlines()[1:]:
        if match := re.match(r"^(\S+)\s", line + " "):
            parent = current = match[1]
            entries[current] = line
        elif match := re.match(r"^  (\S+/?)(?:\s|$)", line):
            current = f"{parent}{match[1]}"
            entries[current] = line
        elif current:
            entries[current] += " " + line.strip()
    return entries


def test_every_package_of_vcpay_is_on_the_map():
    packages = {f"vcpay/{p.parent.name}/" for p in PRODUCT.glob("*/__init__.py")}
    assert packages - tree_entries().keys() == set()


def test_every_file_the_tree_names_exists():
    missing = []
    for entry, text in tree_entries().items():
        folder = ROOT / entry if entry.endswith("/") else None
        for name in re.findall(r"\b([a-z_]+\.py)\b", text):
            if folder is not None and folder.is_dir() and not (folder / name).exists():
                missing.append(f"{entry}{name}")
    assert missing == []


def test_every_path_on_the_way_of_a_payment_exists():
    text = section("### Where things are")
    paths = re.findall(
        r"`((?:vcpay/|sandbox/|templates/|static/)?[\w/]+\.(?:py|html|js)|[\w/]+/)`", text
    )
    assert paths, "the section names no files"
    missing = [
        path for path in paths if not any((base / path).exists() for base in (ROOT, PRODUCT))
    ]
    assert missing == []
