"""Connect webhook delivery: events signed as Stripe signs them, POSTed by one sender thread.

First attempts go out in creation order. A non-2xx answer, a timeout or a refused connection
is retried after each of ``webhook_retry_seconds`` and then given up. Tests can ask for the
next events to be duplicated, held back (and released in any order), delayed, or have their
first attempt signed with the wrong secret or stamped with an old timestamp, to exercise the
receiver's dedupe, ordering guards and signature checks.
"""

import heapq
import hmac
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from sandbox.common.delivery import post
from sandbox.stripe.settings import StripeStandinSettings

FAULT_MODES = ("duplicate", "hold", "delay", "bad_signature", "old_timestamp")
DEFAULT_SECONDS = {"delay": 1.0, "old_timestamp": 600.0}
WRONG_SECRET = "whsec_not_the_endpoint_secret"  # noqa: S105  # nosec B105  # deliberately wrong
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"

# (account, event id, delivered, final): the sender's report on each first-copy attempt.
OutcomeListener = Callable[[str | None, str, bool, bool], None]


def signature_header(payload: str, secret: str, timestamp: int) -> str:
    """``Stripe-Signature`` exactly as ``stripe.WebhookSignature.generate_signature_header``
    makes it: HMAC-SHA256 of ``"{t}.{payload}"`` keyed with the whole ``whsec_`` secret."""
    signed = f"{timestamp}.{payload}".encode()
    digest = hmac.new(secret.encode(), signed, sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookFaultError(ValueError):
    pass


@dataclass
class WebhookFault:
    mode: str
    remaining: int
    seconds: float

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> "WebhookFault":
        mode = spec.get("mode")
        if mode not in FAULT_MODES:
            raise WebhookFaultError(f"'mode' must be one of {', '.join(FAULT_MODES)}.")
        count = spec.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise WebhookFaultError("'count' must be a whole number of events, at least 1.")
        seconds = spec.get("seconds", DEFAULT_SECONDS.get(mode, 0.0))
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise WebhookFaultError("'seconds' must be a number of seconds.")
        return cls(mode, count, float(seconds))


@dataclass
class Delivery:
    """One event on its way to the endpoint, with however many attempts it has had."""

    event_id: str
    event_type: str
    account: str | None
    payload: str
    signing: str = "normal"  # or "bad_signature", "old_timestamp"
    timestamp_age: float = 0.0
    attempts: int = 0
    is_copy: bool = False  # a duplicate: its outcome does not count
    is_retry: bool = False  # scheduled after a failure; waiting for idle ignores it


@dataclass
class Endpoint:
    url: str
    secret: str = field(repr=False)


class WebhookSender:
    def __init__(self, settings: StripeStandinSettings, on_outcome: OutcomeListener):
        self.endpoint = Endpoint(settings.webhook_url, settings.webhook_secret)
        self._retry_seconds = settings.webhook_retry_seconds
        self._timeout = settings.webhook_timeout_seconds
        self._on_outcome = on_outcome
        self._condition = threading.Condition()
        self._queue: list[tuple[float, int, Delivery]] = []  # a heap by due time
        self._order = itertools.count()
        self._held: list[Delivery] = []
        self._faults: list[WebhookFault] = []
        self._attempts: list[dict[str, Any]] = []
        self._in_flight = 0
        self._generation = 0  # bumped by reset, so attempts already under way are forgotten
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="stripe-webhooks", daemon=True)
        self._thread.start()

    @property
    def enabled(self) -> bool:
        return bool(self.endpoint.url)

    def configure(self, url: str, secret: str) -> None:
        with self._condition:
            self.endpoint = Endpoint(url, secret)

    # -- what the stand-in hands over -------------------------------------------------------

    def submit(self, event: dict[str, Any], payload: str) -> None:
        """Queue an event's first delivery, shaped by the next webhook fault if there is one."""
        delivery = Delivery(event["id"], event["type"], event.get("account"), payload)
        with self._condition:
            fault = self._take_fault()
            mode = fault.mode if fault else None
            if mode in ("bad_signature", "old_timestamp"):
                delivery.signing = mode
                delivery.timestamp_age = fault.seconds
            if mode == "hold":
                self._held.append(delivery)
                return
            due = time.monotonic() + (fault.seconds if mode == "delay" else 0.0)
            self._schedule(delivery, due)
            if mode == "duplicate":
                copy = Delivery(delivery.event_id, delivery.event_type, delivery.account, payload)
                copy.is_copy = True
                self._schedule(copy, due)

    def redeliver(self, event: dict[str, Any], payload: str) -> None:
        with self._condition:
            self._schedule(Delivery(event["id"], event["type"], event.get("account"), payload))

    def release(self, order: str) -> int:
        """Send the held events now, oldest first (``created``) or newest first (``reverse``)."""
        with self._condition:
            held, self._held = self._held, []
            for delivery in reversed(held) if order == "reverse" else held:
                self._schedule(delivery)
            return len(held)

    # -- faults, the attempt log, waiting ----------------------------------------------------

    def add_fault(self, spec: dict[str, Any]) -> WebhookFault:
        fault = WebhookFault.from_spec(spec)
        with self._condition:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._condition:
            self._faults.clear()

    def faults(self) -> list[dict[str, Any]]:
        with self._condition:
            return [
                {"mode": f.mode, "remaining": f.remaining, "seconds": f.seconds}
                for f in self._faults
            ]

    def attempts(self, event_id: str | None = None) -> list[dict[str, Any]]:
        with self._condition:
            return [dict(a) for a in self._attempts if event_id in (None, a["event_id"])]

    def held(self) -> list[str]:
        with self._condition:
            return [d.event_id for d in self._held]

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or being sent; scheduled retries and held events
        do not count. False if that took longer than ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._busy():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def reset(self) -> None:
        with self._condition:
            self._queue.clear()
            self._held.clear()
            self._faults.clear()
            self._attempts.clear()
            self._generation += 1
            self._condition.notify_all()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        self._thread.join(timeout=self._timeout + 5)

    # -- the sender thread -------------------------------------------------------------------

    def _busy(self) -> bool:
        return self._in_flight > 0 or any(not d.is_retry for _, _, d in self._queue)

    def _take_fault(self) -> WebhookFault | None:
        if not self._faults:
            return None
        fault = self._faults[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            self._faults.pop(0)
        return fault

    def _schedule(self, delivery: Delivery, due: float | None = None) -> None:
        due = time.monotonic() if due is None else due
        heapq.heappush(self._queue, (due, next(self._order), delivery))
        self._condition.notify_all()

    def _next_due(self) -> Delivery | None:
        while not self._stopping:
            if not self._queue:
                self._condition.wait()
                continue
            wait = self._queue[0][0] - time.monotonic()
            if wait <= 0:
                return heapq.heappop(self._queue)[2]
            self._condition.wait(wait)
        return None

    def _run(self) -> None:
        while True:
            with self._condition:
                delivery = self._next_due()
                if delivery is None:
                    return
                self._in_flight += 1
                generation, endpoint = self._generation, self.endpoint
            try:
                self._deliver(delivery, endpoint, generation)
            finally:
                with self._condition:
                    self._in_flight -= 1
                    self._condition.notify_all()

    def _deliver(self, delivery: Delivery, endpoint: Endpoint, generation: int) -> None:
        if not endpoint.url:
            return
        delivery.attempts += 1
        attempt = self._attempt(delivery, endpoint)
        delivered = attempt["status_code"] is not None and 200 <= attempt["status_code"] < 300
        final = delivered or delivery.attempts > len(self._retry_seconds)
        if generation != self._generation:
            return
        if not delivery.is_copy:
            self._on_outcome(delivery.account, delivery.event_id, delivered, final)
        with self._condition:
            if generation != self._generation:
                return
            self._attempts.append(attempt)
            if not final:
                delivery.is_retry = True
                delay = self._retry_seconds[delivery.attempts - 1]
                self._schedule(delivery, time.monotonic() + delay)

    def _attempt(self, delivery: Delivery, endpoint: Endpoint) -> dict[str, Any]:
        # A signing fault spoils the first attempt only: Stripe signs every retry afresh,
        # so a receiver that refuses it gets a good copy later.
        signing = delivery.signing if delivery.attempts == 1 else "normal"
        timestamp = int(time.time() - (delivery.timestamp_age if signing == "old_timestamp" else 0))
        secret = WRONG_SECRET if signing == "bad_signature" else endpoint.secret
        header = signature_header(delivery.payload, secret, timestamp)
        record: dict[str, Any] = {
            "event_id": delivery.event_id,
            "type": delivery.event_type,
            "account": delivery.account,
            "url": endpoint.url,
            "status_code": None,
            "error": None,
            "attempt": delivery.attempts,
            "signature_header": header,
            "sent_at": time.time(),
        }
        record["status_code"], record["error"] = post(
            endpoint.url,
            delivery.payload.encode(),
            {
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": header,
                "User-Agent": USER_AGENT,
            },
            self._timeout,
        )
        return record
