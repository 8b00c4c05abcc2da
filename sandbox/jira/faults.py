"""Faults tests ask for (rate limits, outages, slow answers) and the log of calls received."""

import itertools
import threading
from dataclasses import asdict, dataclass
from typing import Any

from sandbox.jira.errors import Invalid

MESSAGES = {
    429: "Rate limit exceeded.",
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "Service unavailable. Please try again later.",
    504: "Gateway timeout.",
}


@dataclass
class Fault:
    id: str
    method: str | None  # None matches every method
    path: str  # a prefix of the request path
    status: int | None  # None: answer normally, only late
    retry_after: int | None
    delay: float
    after_effect: bool  # do the real work first, then fail or delay the answer
    times: int | None  # None: until cleared

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and path.startswith(self.path)

    @property
    def message(self) -> str:
        return MESSAGES.get(self.status or 500, f"The server answered {self.status}.")


def _optional_int(spec: dict[str, Any], name: str) -> int | None:
    value = spec.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"'{name}' must be an integer.")
    return value


def fault_from_spec(fault_id: str, spec: dict[str, Any]) -> Fault:
    status = _optional_int(spec, "status")
    delay = spec.get("delay") or 0
    if status is None and not delay:
        raise Invalid("A fault needs a 'status', a 'delay', or both.")
    if status is not None and not 400 <= status <= 599:
        raise Invalid("'status' must be an HTTP error status (400-599).")
    if not isinstance(delay, int | float) or delay < 0:
        raise Invalid("'delay' must be a number of seconds.")
    times = _optional_int(spec, "times")
    if times is not None and times < 1:
        raise Invalid("'times' must be at least 1, or null for every matching call.")
    method = spec.get("method")
    return Fault(
        id=fault_id,
        method=method.upper() if method else None,
        path=spec.get("path") or "/",
        status=status,
        retry_after=_optional_int(spec, "retry_after"),
        delay=float(delay),
        after_effect=bool(spec.get("after_effect", False)),
        times=times,
    )


class FaultBoard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> Fault:
        with self._lock:
            fault = fault_from_spec(f"fault-{next(self._ids)}", spec)
            self._faults.append(fault)
            return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault for this call, counting it against its ``times``."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(f) for f in self._faults]

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) < before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class CallLog:
    """Every API call received, for tests and benchmarks that count HTTP calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []

    def record(self, method: str, path: str, query: str, status: int) -> None:
        with self._lock:
            self._calls.append({"method": method, "path": path, "query": query, "status": status})

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
