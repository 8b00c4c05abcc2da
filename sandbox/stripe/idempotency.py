"""Idempotent requests as Stripe keeps them: the first result for a key (per account) is
saved and replayed for the same request, and a different request with that key is refused.

A result is saved only once the endpoint has begun executing; a request refused while being
validated leaves the key free. Keys are forgotten after 24 hours.
"""

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from sandbox.stripe.errors import (
    IdempotencyError,
    IdempotencyInProgress,
    InvalidParameter,
)

MAX_KEY_LENGTH = 255
RETENTION_SECONDS = 24 * 60 * 60


@dataclass(frozen=True)
class SavedResult:
    status: int
    body: bytes
    content_type: str
    request_id: str


@dataclass
class Record:
    endpoint: str  # "POST /v1/..."
    fingerprint: str
    created: float
    result: SavedResult | None = None  # None while the first request is running


def fingerprint(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)


def check_key(key: str) -> None:
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidParameter(
            f"Keys for idempotent requests can only be {MAX_KEY_LENGTH} characters long. "
            f"Provided key is {len(key)} characters.",
            param="Idempotency-Key",
        )


class IdempotencyRecords:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], Record] = {}

    def claim(
        self, key: str, account: str | None, endpoint: str, params: dict[str, Any]
    ) -> SavedResult | None:
        """The saved result to replay, or None when this request is the first and now owns
        the key. Raises when the key belongs to a different or still-running request."""
        check_key(key)
        now = time.monotonic()
        with self._lock:
            self._forget_before(now - RETENTION_SECONDS)
            record = self._records.get((key, account or ""))
            if record is None:
                self._records[(key, account or "")] = Record(endpoint, fingerprint(params), now)
                return None
            if record.endpoint != endpoint:
                raise IdempotencyError(
                    "Keys for idempotent requests can only be used for the same endpoint they "
                    f"were first used for ('{record.endpoint}' vs '{endpoint}'). Try using a "
                    f"key other than '{key}' if you meant to execute a different request."
                )
            if record.fingerprint != fingerprint(params):
                raise IdempotencyError(
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request."
                )
            if record.result is None:
                raise IdempotencyInProgress(
                    "There is currently another in-progress request using this Idempotent "
                    "Key (that probably means you submitted twice, and the other request is "
                    f"still going through): {key}. Please try again later."
                )
            return record.result

    def save(self, key: str, account: str | None, result: SavedResult) -> None:
        with self._lock:
            record = self._records.get((key, account or ""))
            if record is not None:
                record.result = result

    def release(self, key: str, account: str | None) -> None:
        with self._lock:
            record = self._records.get((key, account or ""))
            if record is not None and record.result is None:
                del self._records[(key, account or "")]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def _forget_before(self, cutoff: float) -> None:
        expired = [k for k, r in self._records.items() if r.created < cutoff]
        for k in expired:
            del self._records[k]
