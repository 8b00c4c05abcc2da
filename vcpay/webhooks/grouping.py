"""Writing the events of concurrent webhook requests together: one statement, one commit.

Each stored event used to cost its own INSERT and its own commit (a flush of the database's
log). Under load many requests wait for that at once, so they share it instead: a request
that finds no write in flight writes at once, with whatever other requests have gathered; a
request that finds one in flight waits, and the next write takes it along. Nothing waits on a
timer, so a lone request is as quick as before, and a busy process writes in groups.

Each request still answers only once ITS row is committed: it learns its own outcome (the
row id, None for an event kept before, or the error of its group's write). A group is one
statement, so it is committed or rejected whole; every request of a rejected group gets the
error, answers 5xx, and Stripe delivers again.

A waiting request is woken exactly once: when its row is written, or when the write before
has ended and it is the oldest still waiting, to write the next group itself. (A shared
condition woke every waiting request after each write, most of them only to wait again: CPU
the web process spends on nothing, at the load where it has least to spare.)

Only ``threading`` primitives: gevent's monkey-patching makes them cooperative.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

GROUP_LIMIT = 100  # rows in one statement: SQLite allows 32,766 parameters, and 10 a row


class GroupFailed(Exception):
    """The write of the group this request joined failed: nothing of the group was kept."""


def _held() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class _Waiting:
    values: dict
    done: bool = False
    row_id: int | None = None
    error: BaseException | None = field(default=None, repr=False)
    # Released (by whichever thread wrote last) when this request may go on: its row is
    # written, or it is its turn to write.
    turn: threading.Lock = field(default_factory=_held, repr=False)


class GroupedWriter:
    """Gathers rows keyed by ``key`` and writes each group with ``write``.

    ``write(rows)`` stores the rows in one commit and returns the new row ids by key: a key
    it does not return was kept before. A key twice in one group is written once; the later
    request learns it was kept before, as it would a moment later.
    """

    def __init__(self, write: Callable[[list[dict]], dict[str, int]], key: str, limit=GROUP_LIMIT):
        self.write = write
        self.key = key
        self.limit = limit
        self.lock = threading.Lock()
        self.gathered: list[_Waiting] = []  # oldest first, none of them in a write yet
        self.writing = False  # a request is writing, or has been handed the next write

    def store(self, values: dict) -> int | None:
        """Write ``values`` with the group it joins; its row id, or None if kept before.
        Raises ``GroupFailed`` (from the write's error) when the group's write fails."""
        mine = _Waiting(values)
        with self.lock:
            self.gathered.append(mine)
            in_flight, self.writing = self.writing, True
        if in_flight:
            mine.turn.acquire()
        if not mine.done:
            # Nobody else is writing: this request writes the oldest gathered, its own first
            # among them (first come, first written).
            self._write_next(mine)
        if mine.error is not None:
            raise GroupFailed(f"{type(mine.error).__name__}: {mine.error}") from mine.error
        return mine.row_id

    def _write_next(self, mine: _Waiting) -> None:
        with self.lock:
            group, self.gathered = self.gathered[: self.limit], self.gathered[self.limit :]
        try:
            self._write_group(group)
        finally:
            for waiting in group:
                waiting.done = True
            with self.lock:
                successor = self.gathered[0] if self.gathered else None
                self.writing = successor is not None
            for waiting in group:
                if waiting is not mine:
                    waiting.turn.release()
            if successor is not None:
                successor.turn.release()  # the next write is its own

    def _write_group(self, group: list[_Waiting]) -> None:
        first: dict[str, _Waiting] = {}
        for waiting in group:
            first.setdefault(waiting.values[self.key], waiting)
        try:
            created = self.write([waiting.values for waiting in first.values()])
        except BaseException as error:  # noqa: BLE001 - each request of the group raises it
            for waiting in group:
                waiting.error = error
            return
        for key, waiting in first.items():
            waiting.row_id = created.get(key)
