"""Whether a viewer may still see a call, asked again while their stream stays open, and
answered once for all the streams that share what the answer depends on."""

import threading
import time

from flask import Flask

from vcpay.calls.models import Call
from vcpay.extensions import db


def _allowed(app: Flask, call_id: int, still_allowed) -> bool:
    with app.app_context():
        call = db.session.get(Call, call_id)
        allowed = call is not None and still_allowed(call)
        db.session.remove()
    return allowed


class AccessChecks:
    """Recent answers to "may this viewer still see this call", shared by the viewer's streams
    of the call: a person with the call open in several tabs costs one check, not one each.
    An answer serves for ``valid_for`` seconds (streams ask a quarter of their re-check
    interval, so each still notices a lost right within about 1.25 times that)."""

    def __init__(self, reading: threading.BoundedSemaphore):
        self.reading = reading  # the streams' turns at the database (the waker's)
        self.lock = threading.Lock()
        self.answers: dict[str, tuple[float, bool]] = {}
        self.checking: dict[str, threading.Lock] = {}

    def allowed(self, app: Flask, key: str, call_id: int, still_allowed, valid_for: float) -> bool:
        with self._checking(key):
            now = time.monotonic()
            answer = self.answers.get(key)
            if answer is not None and answer[0] > now:
                return answer[1]
            with self.reading:  # a turn at the streams' few connections, as their reads take
                allowed = _allowed(app, call_id, still_allowed)
            with self.lock:
                self.answers[key] = (time.monotonic() + valid_for, allowed)
                if len(self.answers) > 1000:
                    for old in [k for k, (until, _) in self.answers.items() if until <= now]:
                        self.answers.pop(old)
                        if not self.checking[old].locked():
                            self.checking.pop(old)
            return allowed

    def _checking(self, key: str) -> threading.Lock:
        with self.lock:
            return self.checking.setdefault(key, threading.Lock())
