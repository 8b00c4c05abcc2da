"""Jira's faults: a status answered with Jira's error shape and, for 429 and 503, an integer
``Retry-After``; or the real work done first and the failure (or the delay) after it
(``after_effect``), as when Jira commits a change and the answer is lost."""

from dataclasses import dataclass
from typing import Any

from sandbox.common.faults import Fault, FaultBoard, SpecNames, common_parts, whole_number

MESSAGES = {
    429: "Rate limit exceeded.",
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "Service unavailable. Please try again later.",
    504: "Gateway timeout.",
}
NAMES = SpecNames(path="path", delay="delay", times="times", default_times=None)


@dataclass
class JiraFault(Fault):
    retry_after: int | None = None
    after_effect: bool = False  # do the real work first, then fail or delay the answer

    @property
    def message(self) -> str:
        return MESSAGES.get(self.status or 500, f"The server answered {self.status}.")


def read_fault(fault_id: str, spec: dict[str, Any]) -> JiraFault:
    return JiraFault(
        id=fault_id,
        **common_parts(spec, NAMES),
        retry_after=whole_number(spec, "retry_after"),
        after_effect=bool(spec.get("after_effect", False)),
    )


def jira_fault_board() -> FaultBoard:
    return FaultBoard(read_fault)
