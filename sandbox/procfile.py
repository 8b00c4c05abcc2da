"""deploy/Procfile read as commands, for whatever starts the production profile's processes
itself rather than through honcho: the scale-out test (tests/processes.py) and the load
benchmark (bench/product.py). The Procfile stays the one place the command lines are written.
"""

import shlex
import sys
from pathlib import Path

PROCFILE = Path(__file__).resolve().parent.parent / "deploy" / "Procfile"


def procfile() -> dict[str, list[str]]:
    """deploy/Procfile's processes, each as its command's words."""
    processes = {}
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = shlex.split(command)
    return processes


def procfile_command(name: str, *extra: str) -> list[str]:
    """A Procfile process run from this interpreter (its program, gunicorn, celery or flask,
    as ``python -m``), with the Procfile's arguments and any ``extra``."""
    program, *arguments = procfile()[name]
    return [sys.executable, "-m", program, *arguments, *extra]
