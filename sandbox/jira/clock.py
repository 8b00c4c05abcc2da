"""Time as Jira shows it: epoch milliseconds inside, the user's time zone outside."""

import threading
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

Millis = int


class Clock:
    """Wall-clock time that tests may shift, e.g. to put a decision in a cursor's minute."""

    def __init__(self) -> None:
        self._offset_ms = 0
        self._lock = threading.Lock()

    def now_ms(self) -> Millis:
        with self._lock:
            return int(time.time() * 1000) + self._offset_ms

    @property
    def offset_seconds(self) -> float:
        return self._offset_ms / 1000

    def shift_to(self, offset_seconds: float) -> None:
        with self._lock:
            self._offset_ms = int(offset_seconds * 1000)


def to_datetime(moment: Millis, time_zone: str) -> datetime:
    return datetime.fromtimestamp(moment / 1000, UTC).astimezone(ZoneInfo(time_zone))


def from_datetime(moment: datetime) -> Millis:
    return int(moment.timestamp() * 1000)


def jira_time(moment: Millis, time_zone: str) -> str:
    """Jira's REST format: ``2026-11-27T10:00:00.123+1100``."""
    local = to_datetime(moment, time_zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment % 1000:03d}" + local.strftime("%z")


def date_dto(moment: Millis, time_zone: str) -> dict:
    """The servicedeskapi ``DateDTO``."""
    local = to_datetime(moment, time_zone)
    return {
        "iso8601": local.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "jira": jira_time(moment, time_zone),
        "friendly": local.strftime("%d/%b/%y %I:%M %p"),
        "epochMillis": moment,
    }


def readable(moment: Millis, time_zone: str) -> str:
    """For people on the agent page."""
    return to_datetime(moment, time_zone).strftime("%d %b %Y %H:%M:%S %Z")
