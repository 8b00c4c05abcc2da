"""How vcpay's processes log: text lines for a person at a terminal (``make run``), or one
JSON object a line for a log pipeline (``VCPAY_LOG_FORMAT=json``, production). Either way each
record carries the ids of ``context`` and nothing personal."""

import logging
import os

from pythonjsonlogger.json import JsonFormatter

from vcpay.observability.context import FIELDS, IdsFilter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
FORMAT_VARIABLE = "VCPAY_LOG_FORMAT"


def log_format(value: str) -> str:
    lowered = value.strip().lower()
    if lowered not in LOG_FORMATS:
        raise ValueError(f"expected one of {', '.join(LOG_FORMATS)}, got {value!r}")
    return lowered


def format_from_environment() -> str:
    """For the processes that log before a Flask app exists (gunicorn's master)."""
    try:
        return log_format(os.environ.get(FORMAT_VARIABLE) or "text")
    except ValueError:
        return "text"  # the app refuses the setting itself, with its name, at start-up


class VcpayJsonFormatter(JsonFormatter):
    """time, level, logger, message, then the ids that apply: absent ones are left out."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )

    def process_log_record(self, log_data: dict) -> dict:
        for name in FIELDS:
            if log_data.get(name) is None:
                log_data.pop(name, None)
        return log_data


def formatter(kind: str) -> logging.Formatter:
    return VcpayJsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)


def dress(handler: logging.Handler, kind: str) -> None:
    """Give a handler someone else made (gunicorn's, Celery's) our format and ids."""
    if kind == "json":
        handler.setFormatter(formatter(kind))
    if not any(isinstance(f, IdsFilter) for f in handler.filters):
        handler.addFilter(IdsFilter())


def configure_logging(level: str, kind: str) -> None:
    """The root logger's handler, as ``logging.basicConfig`` would make it (and leaves one
    already there alone, such as a test runner's)."""
    handler = logging.StreamHandler()
    dress(handler, kind)
    handler.setFormatter(formatter(kind))
    logging.basicConfig(level=level, handlers=[handler])
    # The stripe library's INFO lines are each call's URL, which names Checkout sessions
    # (the key to a patient's payment page): its warnings and errors are enough.
    logging.getLogger("stripe").setLevel(max(logging.WARNING, logging.getLevelName(level)))
