"""Starting the demo afresh (``flask --app wsgi reset-demo``): the demo's data and the
stand-ins' files in the instance folder are deleted, then the database is made again and
seeded, so a request can be approved once and declined the next time.

Only the demo's own: the command refuses with VCPAY_ENV=production, with a database that is
not the embedded SQLite file of the instance folder, with a service pointed at another
machine, and while `make run` still holds the files (something answers on its ports).
"""

import shutil
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vcpay.config import SERVICE_ADDRESSES
from vcpay.public_urls import is_local

# What `make run` keeps in the instance folder besides the secret key, which is kept (a
# reset need not sign anyone's browser out of anything but the deleted accounts).
DEMO_FILES = (
    "vcpay.sqlite*",  # the database, with its journal
    "broker",  # the embedded broker's queued tasks
    "celerybeat-schedule*",  # beat's schedule (dbm may add a suffix)
    "jira-standin.json",
    "stripe-standin.json",
    "mail",  # the mail catcher's emails
    "demo-history.json",  # the demo's past, written again on the next start
)
# The addresses of `make run`'s processes: web, Jira and Stripe stand-ins, mail catcher.
DEMO_ADDRESSES = ("PUBLIC_URL", "JIRA_URL", "STRIPE_API_BASE", "MAIL_CATCHER_URL")


class ResetRefused(Exception):
    """Why the demo is not reset here; the message says what to do."""


def embedded_database_uri(instance_path: str) -> str:
    return f"sqlite:///{Path(instance_path) / 'vcpay.sqlite'}"


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((parts.hostname or "127.0.0.1", port)) == 0


def refuse_unless_local_demo(config: dict[str, Any], instance_path: str) -> None:
    """Raise ResetRefused unless this is the local demo, stopped."""
    if config["ENVIRONMENT"] == "production":
        raise ResetRefused(
            "reset-demo deletes the demo's data and never runs with VCPAY_ENV=production."
        )
    if config["SQLALCHEMY_DATABASE_URI"] != embedded_database_uri(instance_path):
        # The URL may hold a password: name the setting only.
        raise ResetRefused(
            "reset-demo resets only the demo's own database, the SQLite file in "
            f"{instance_path}; VCPAY_DATABASE_URL names another. Unset it to reset the demo."
        )
    for key in SERVICE_ADDRESSES:
        if not is_local(config[key]):
            raise ResetRefused(
                f"reset-demo is for the local demo, and {key} is {config[key]}: nothing reset."
            )
    running = [config[key] for key in DEMO_ADDRESSES if _answers(config[key])]
    if running:
        raise ResetRefused(
            f"Something still answers at {', '.join(running)}: stop `make run` first "
            "(Ctrl-C), then reset the demo."
        )


def delete_demo_files(instance_path: str) -> list[str]:
    """Delete what the demo keeps in the instance folder; the names of what was there."""
    deleted = []
    for pattern in DEMO_FILES:
        for path in sorted(Path(instance_path).glob(pattern)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            deleted.append(path.name)
    return deleted
