"""Faults tests and benchmarks ask a stand-in for (outages, rate limits, slow answers), and
the log of API calls it received.

Each stand-in names the parts of a fault its own way in ``/_sandbox/faults`` (Jira's
``path``/``delay``/``times``, Stripe's ``path_prefix``/``latency_seconds``/``count``) and adds
what its service sends with a refusal; the board that matches and counts them is this one.
"""

import itertools
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from flask import Blueprint, jsonify, request


class FaultSpecError(ValueError):
    """A fault spec the stand-in cannot follow; ``/_sandbox`` answers 400 with the message."""


@dataclass
class Fault:
    id: str
    method: str | None  # None matches every method
    path: str  # a prefix of the request path
    status: int | None  # None: answer normally, only late
    delay: float
    times: int | None  # None: until cleared

    def matches(self, method: str, path: str) -> bool:
        return self.method in (None, method) and path.startswith(self.path)

    def spend(self) -> bool:
        """Count one use; True when it is used up."""
        if self.times is None:
            return False
        self.times -= 1
        return self.times <= 0

    def describe(self) -> dict[str, Any]:
        """As ``GET /_sandbox/faults`` lists it."""
        return asdict(self)


@dataclass(frozen=True)
class SpecNames:
    """What one stand-in calls the common parts of a fault spec."""

    path: str = "path"
    delay: str = "delay"
    times: str = "times"
    default_times: int | None = None


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultSpecError(f"'{name}' must be a non-negative number.")
    return float(value)


def whole_number(spec: dict[str, Any], name: str) -> int | None:
    value = spec.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise FaultSpecError(f"'{name}' must be an integer.")
    return int(value)


def common_parts(spec: dict[str, Any], names: SpecNames) -> dict[str, Any]:
    """The method, path, status, delay and count of a spec, checked; ``Fault``'s fields."""
    status = whole_number(spec, "status")
    delay = _number(spec.get(names.delay) or 0, names.delay)
    if status is None and not delay:
        raise FaultSpecError(f"A fault needs a 'status', a '{names.delay}', or both.")
    if status is not None and not 400 <= status <= 599:
        raise FaultSpecError("'status' must be an HTTP error status (400-599).")
    times = whole_number({names.times: names.default_times, **spec}, names.times)
    if times is not None and times < 1:
        raise FaultSpecError(
            f"'{names.times}' must be at least 1, or null for every matching call."
        )
    method = spec.get("method")
    return {
        "method": str(method).upper() if method else None,
        "path": str(spec.get(names.path) or "/"),
        "status": status,
        "delay": delay,
        "times": times,
    }


class FaultBoard:
    """The faults waiting for calls; ``read`` turns a spec into a stand-in's own fault."""

    def __init__(self, read: Callable[[str, dict[str, Any]], Fault]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: dict[str, Any]) -> Fault:
        with self._lock:
            fault = self._read(f"fault-{next(self._ids)}", spec)
            self._faults.append(fault)
            return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first fault for this call, counting it against its uses."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.spend():
                        self._faults.remove(fault)
                    return fault
        return None

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) < before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


class CallLog:
    """Every API call received, for tests and benchmarks that count what a library sent."""

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


def add_fault_routes(
    control: Blueprint, board: Callable[[], FaultBoard], log: Callable[[], CallLog]
) -> None:
    """``/faults`` (list, add, clear, remove one) and ``/calls`` (list, clear) on a stand-in's
    ``/_sandbox`` blueprint; ``board`` and ``log`` find the running stand-in's."""

    @control.get("/faults")
    def faults():
        return jsonify(board().listing())

    @control.post("/faults")
    def add_fault():
        spec = request.get_json(silent=True)
        if not isinstance(spec, dict):
            raise FaultSpecError("The request body must be a JSON object.")
        return jsonify({"id": board().add(spec).id}), 201

    @control.delete("/faults")
    def clear_faults():
        board().clear()
        return "", 204

    @control.delete("/faults/<fault_id>")
    def remove_fault(fault_id: str):
        if not board().remove(fault_id):
            return jsonify({"error": f"No fault {fault_id}."}), 404
        return "", 204

    @control.get("/calls")
    def calls():
        return jsonify(log().listing())

    @control.delete("/calls")
    def clear_calls():
        log().clear()
        return "", 204

    @control.errorhandler(FaultSpecError)
    def invalid_fault(error: FaultSpecError):
        return jsonify({"error": str(error)}), 400
