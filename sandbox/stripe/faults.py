"""API faults tests ask for (outages, lock conflicts, rate limits, slow answers) and the log
of calls received."""

import itertools
import threading
from dataclasses import asdict, dataclass
from typing import Any

from sandbox.stripe.errors import ApiError, InvalidRequest, StripeError

RATE_LIMITED = (
    "Request rate limit exceeded. Learn more about rate limits here "
    "https://stripe.com/docs/rate-limits."
)
LOCK_TIMEOUT = (
    "This object cannot be accessed right now because another API request or Stripe process "
    "is currently accessing it. If you see this error intermittently, retry the request. If "
    "you see this error frequently and are making multiple concurrent requests to a single "
    "object, make your requests serially or at a lower rate. See "
    "https://stripe.com/docs/rate-limits for more details."
)
UNKNOWN_ERROR = "An unknown error occurred"


class FaultSpecError(ValueError):
    pass


@dataclass
class ApiFault:
    id: str
    path_prefix: str
    method: str | None  # None matches every method
    status: int | None  # None: answer normally, only late
    should_retry: bool | None  # the Stripe-Should-Retry header, when not None
    latency_seconds: float
    count: int | None  # None: until cleared

    def matches(self, method: str, path: str) -> bool:
        return (self.method in (None, method)) and path.startswith(self.path_prefix)

    def refusal(self) -> StripeError:
        """The error Stripe answers with at this status; injected faults happen before the
        endpoint runs, so an idempotency key stays free for the client's retry."""
        status = self.status or 500
        if status == 429:
            error: StripeError = InvalidRequest(RATE_LIMITED, code="rate_limit")
        elif status == 409:
            error = InvalidRequest(LOCK_TIMEOUT, code="lock_timeout")
        elif status >= 500:
            error = ApiError(UNKNOWN_ERROR)
        else:
            error = InvalidRequest(f"The stand-in was asked to answer {status}.")
        error.status = status
        error.stored = False
        if self.should_retry is not None:
            error.headers["Stripe-Should-Retry"] = "true" if self.should_retry else "false"
        return error


def _number(spec: dict[str, Any], name: str, default: float | None) -> float | None:
    value = spec.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultSpecError(f"'{name}' must be a non-negative number.")
    return value


def fault_from_spec(fault_id: str, spec: dict[str, Any]) -> ApiFault:
    status = _number(spec, "status", None)
    latency = _number(spec, "latency_seconds", 0) or 0.0
    if status is None and not latency:
        raise FaultSpecError("A fault needs a 'status', a 'latency_seconds', or both.")
    if status is not None and (status != int(status) or not 400 <= status <= 599):
        raise FaultSpecError("'status' must be an HTTP error status (400-599).")
    count = _number(spec, "count", 1)
    if count is not None and (count != int(count) or count < 1):
        raise FaultSpecError("'count' must be at least 1, or null for every matching call.")
    should_retry = spec.get("should_retry")
    if should_retry not in (True, False, None):
        raise FaultSpecError("'should_retry' must be true, false or null.")
    method = spec.get("method")
    return ApiFault(
        id=fault_id,
        path_prefix=str(spec.get("path_prefix") or "/"),
        method=str(method).upper() if method else None,
        status=int(status) if status is not None else None,
        should_retry=should_retry,
        latency_seconds=float(latency),
        count=int(count) if count is not None else None,
    )


class FaultBoard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[ApiFault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> ApiFault:
        with self._lock:
            fault = fault_from_spec(f"fault-{next(self._ids)}", spec)
            self._faults.append(fault)
            return fault

    def take(self, method: str, path: str) -> ApiFault | None:
        """The first fault for this call, counting it against its ``count``."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class CallLog:
    """Every API and OAuth call received, for tests that count what the library sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []

    def record(self, call: dict[str, Any]) -> None:
        with self._lock:
            self._calls.append(call)

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
