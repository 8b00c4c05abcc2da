"""The waker's look-back: every few seconds, one query for the call events that became visible
lately, whichever call they are in. It finds an event whose transaction committed late (its id
below ones streams already sent) and one whose announcement was lost or came before its rows.
"""

import time
from collections import deque

from sqlalchemy import func, select

from vcpay.calls.models import CallEvent
from vcpay.extensions import db

# The look-back reads every event that became visible in about this long: a transaction that
# commits later than this after taking its event's id is not found by it (Redis still tells).
LOOK_BACK_SECONDS = 60.0
FIRST_REACH = 1000  # events the first look-back reads, before it knows what was visible when


class LookBack:
    def __init__(self):
        # The highest event id each read saw, and when (see ``floor``).
        self.visible: deque[tuple[float, int]] = deque()

    def read(self) -> dict[int, list[int]]:
        """The ids of the events that became visible lately, by call (in an app context)."""
        floor = self.floor()
        if floor is None:
            floor = (db.session.scalar(select(func.max(CallEvent.id))) or 0) - FIRST_REACH
        rows = db.session.execute(
            select(CallEvent.call_id, CallEvent.id).where(CallEvent.id > floor)
        ).all()
        events: dict[int, list[int]] = {}
        for call_id, event_id in rows:
            events.setdefault(call_id, []).append(event_id)
        self.visible.append((time.monotonic(), max((row.id for row in rows), default=floor)))
        return events

    def floor(self) -> int | None:
        """The highest id a read saw ``LOOK_BACK_SECONDS`` ago: every event created since has a
        higher one (ids are handed out in order at insert)."""
        reach = time.monotonic() - LOOK_BACK_SECONDS
        while len(self.visible) > 1 and self.visible[1][0] <= reach:
            self.visible.popleft()
        return self.visible[0][1] if self.visible else None
