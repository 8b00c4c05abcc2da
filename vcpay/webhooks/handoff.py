"""Handing stored events to the workers in batches, off the webhook's request thread.

Under load, building one Celery message per event costs the web server more than storing the
event does. The webhook view only drops the stored id here; one thread per web process sends
whatever has gathered as a single message. An id lost with its process (a crash before the
send) is still in the inbox, and the sweeper queues it again.

A message costs the web process about half a millisecond of CPU however many ids it carries,
so under load the thread sends at most one every ``SEND_INTERVAL``: the ids of the next few
milliseconds go with it. A lone event, after a quiet moment, still goes at once.
"""

import logging
import os
import queue
import threading
import time

log = logging.getLogger(__name__)
BATCH_LIMIT = 500
SEND_INTERVAL = 0.05  # seconds: at most 20 messages a second from one web process


class Handoff:
    def __init__(self, send, interval: float = SEND_INTERVAL):
        self.send = send  # called with a list of ids
        self.interval = interval
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
        last_sent = float("-inf")
        while True:
            batch = [self.waiting.get()]
            pause = last_sent + self.interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # what arrives meanwhile goes in this message
            last_sent = time.monotonic()
            while len(batch) < BATCH_LIMIT:
                try:
                    batch.append(self.waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                self.send(batch)
            except Exception:  # noqa: BLE001 - any broker failure; the sweeper re-queues them
                log.warning("Could not hand %s Stripe event(s) to the workers", len(batch))
