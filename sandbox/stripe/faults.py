"""Stripe's API faults (outages, lock conflicts, rate limits, slow answers): refused in
Stripe's error shape, with ``Stripe-Should-Retry`` when asked, before the endpoint runs."""

from dataclasses import dataclass
from typing import Any

from sandbox.common.faults import Fault, FaultBoard, FaultSpecError, SpecNames, common_parts
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
NAMES = SpecNames(path="path_prefix", delay="latency_seconds", times="count", default_times=1)


@dataclass
class ApiFault(Fault):
    should_retry: bool | None = None  # the Stripe-Should-Retry header, when not None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path_prefix": self.path,
            "method": self.method,
            "status": self.status,
            "should_retry": self.should_retry,
            "latency_seconds": self.delay,
            "count": self.times,
        }

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


def read_fault(fault_id: str, spec: dict[str, Any]) -> ApiFault:
    should_retry = spec.get("should_retry")
    if should_retry not in (True, False, None):
        raise FaultSpecError("'should_retry' must be true, false or null.")
    return ApiFault(id=fault_id, **common_parts(spec, NAMES), should_retry=should_retry)


def stripe_fault_board() -> FaultBoard:
    return FaultBoard(read_fault)
