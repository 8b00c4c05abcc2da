"""An admin webhook, sent as Jira Cloud sends it: the issue as JSON after each change.

With a secret, Jira signs the raw body with HMAC-SHA256 and sends ``X-Hub-Signature:
sha256=<hex>``. A delivery answered with 408, 409, 425, 429 or a 5xx, or not answered at all,
is retried (each retry carries ``X-Atlassian-Webhook-Retry``), after each of
``webhook_retry_seconds``; every attempt of one delivery has the same
``X-Atlassian-Webhook-Identifier``. One sender thread posts them in order of change.
"""

import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from sandbox.common.delivery import post

RETRIED_STATUSES = {408, 409, 425, 429}
USER_AGENT = "Atlassian Webhook HTTP Client"


def signature_header(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, sha256).hexdigest()


@dataclass
class Endpoint:
    url: str
    secret: str = field(repr=False)


@dataclass
class Delivery:
    identifier: str
    event: str
    key: str
    body: bytes
    attempts: int = 0
    due: float = 0.0


class JiraWebhookSender:
    def __init__(self, url: str, secret: str, retry_seconds: tuple[float, ...], timeout: float):
        self.endpoint = Endpoint(url, secret)
        self._retry_seconds = retry_seconds
        self._timeout = timeout
        self._condition = threading.Condition()
        self._queue: list[Delivery] = []
        self._attempts: list[dict[str, Any]] = []
        self._in_flight = 0
        self._generation = 0  # bumped by reset: attempts under way then are forgotten
        self._numbers = itertools.count(1)
        self._thread = threading.Thread(target=self._run, name="jira-webhooks", daemon=True)
        self._thread.start()

    def configure(self, url: str, secret: str) -> None:
        """A new endpoint starts clean: what was still due for the old one is dropped."""
        with self._condition:
            if (url, secret) != (self.endpoint.url, self.endpoint.secret):
                self._queue.clear()
                self._generation += 1
            self.endpoint = Endpoint(url, secret)
            self._condition.notify_all()

    def submit(self, event: str, key: str, payload: dict[str, Any]) -> None:
        """Queue one change's delivery; nothing is queued while no endpoint is configured."""
        with self._condition:
            if not self.endpoint.url:
                return
            identifier = f"sandbox-{next(self._numbers)}"
            body = json.dumps(payload, separators=(",", ":")).encode()
            self._queue.append(Delivery(identifier, event, key, body, due=time.monotonic()))
            self._condition.notify_all()

    def attempts(self) -> list[dict[str, Any]]:
        with self._condition:
            return list(self._attempts)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or being sent (retries included)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._queue or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def reset(self) -> None:
        with self._condition:
            self._queue.clear()
            self._attempts.clear()
            self._generation += 1
            self._condition.notify_all()

    def _next_due(self) -> Delivery:
        while True:
            now = time.monotonic()
            due = [d for d in self._queue if d.due <= now]
            if due:
                delivery = min(due, key=lambda d: d.due)
                self._queue.remove(delivery)
                return delivery
            soonest = min((d.due for d in self._queue), default=None)
            self._condition.wait(None if soonest is None else soonest - now)

    def _run(self) -> None:
        while True:
            with self._condition:
                delivery = self._next_due()
                self._in_flight += 1
                endpoint, generation = self.endpoint, self._generation
            record = self._attempt(delivery, endpoint)
            with self._condition:
                self._in_flight -= 1
                if generation == self._generation:
                    self._after(delivery, record)
                self._condition.notify_all()

    def _after(self, delivery: Delivery, record: dict[str, Any]) -> None:
        self._attempts.append(record)
        status = record["status_code"]
        retried = status is None or status in RETRIED_STATUSES or status >= 500
        if retried and delivery.attempts <= len(self._retry_seconds):
            delivery.due = time.monotonic() + self._retry_seconds[delivery.attempts - 1]
            self._queue.append(delivery)

    def _attempt(self, delivery: Delivery, endpoint: Endpoint) -> dict[str, Any]:
        delivery.attempts += 1
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-Atlassian-Webhook-Identifier": delivery.identifier,
        }
        if endpoint.secret:
            headers["X-Hub-Signature"] = signature_header(delivery.body, endpoint.secret)
        if delivery.attempts > 1:
            headers["X-Atlassian-Webhook-Retry"] = str(delivery.attempts - 1)
        status_code, error = post(endpoint.url, delivery.body, headers, self._timeout)
        return {
            "identifier": delivery.identifier,
            "event": delivery.event,
            "key": delivery.key,
            "attempt": delivery.attempts,
            "status_code": status_code,
            "error": error,
        }
