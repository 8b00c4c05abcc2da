"""Handing stored events to the workers in batches, off the webhook's request thread.

Under load, building one Celery message per event costs the web server more than storing the
event does. The webhook view only drops the stored id here; one thread per web process sends
whatever has gathered as a single message. An id lost with its process (a crash before the
send) is still in the inbox, and the sweeper queues it again.
"""

import logging
import os
import queue
import threading

log = logging.getLogger(__name__)
BATCH_LIMIT = 500


class Handoff:
    def __init__(self, send):
        self.send = send  # called with a list of ids
        self.waiting: queue.SimpleQueue[int] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.owner_pid: int | None = None

    def submit(self, row_id: int) -> None:
        self._start_in_this_process()
        self.waiting.put(row_id)

    def _start_in_this_process(self) -> None:
        # A forked web worker inherits the object but not the thread: start one per process.
        if self.owner_pid == os.getpid():
            return
        with self.lock:
            if self.owner_pid != os.getpid():
                self.waiting = queue.SimpleQueue()
                threading.Thread(target=self._run, name="stripe-handoff", daemon=True).start()
                self.owner_pid = os.getpid()

    def _run(self) -> None:
        while True:
            batch = [self.waiting.get()]
            while len(batch) < BATCH_LIMIT:
                try:
                    batch.append(self.waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                self.send(batch)
            except Exception:  # noqa: BLE001 - any broker failure; the sweeper re-queues them
                log.warning("Could not hand %s Stripe event(s) to the workers", len(batch))
