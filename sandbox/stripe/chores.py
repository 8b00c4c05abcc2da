"""Work the stand-in does on its own clock, as Stripe does (expiring Checkout Sessions)."""

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Chore:
    """Runs ``job`` every ``seconds`` in a daemon thread until stopped."""

    def __init__(self, name: str, seconds: float, job: Callable[[], object]):
        self._seconds = seconds
        self._job = job
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self._seconds):
            try:
                self._job()
            except Exception:  # a bad round must not stop the clock
                log.exception("stand-in chore %s failed", self._thread.name)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=self._seconds + 5)
