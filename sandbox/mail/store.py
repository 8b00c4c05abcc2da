"""The messages the catcher has taken, in memory or as ``.eml`` files in a folder."""

import json
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from sandbox.common.files import write_atomically

# One header line in front of the message as it arrived: the envelope is not part of the
# message, and keeping it in the same file keeps each write a single atomic rename.
ENVELOPE_HEADER = b"X-Catcher-Envelope: "
MESSAGE_ID_PATTERN = re.compile(r"(\d{6,})-[0-9a-f]{6}")


@dataclass(frozen=True)
class CaughtMessage:
    id: str
    received_at: str
    envelope_sender: str
    envelope_recipients: tuple[str, ...]
    sender: str
    to: str
    cc: str
    subject: str
    date: str
    message_id: str
    text: str | None
    html: str | None
    size: int
    # The message exactly as the SMTP server took it, for readers that parse it themselves.
    raw: bytes = field(default=b"", repr=False, compare=False)

    @property
    def sequence(self) -> int:
        return int(self.id.split("-", 1)[0])

    def is_addressed_to(self, address: str) -> bool:
        """Whether ``address`` received it, by envelope or by the To and Cc headers."""
        wanted = address.strip().lower()
        header_addresses = [email for _, email in getaddresses([self.to, self.cc])]
        return any(wanted == a.lower() for a in (*self.envelope_recipients, *header_addresses))

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "received_at": self.received_at,
            "envelope_sender": self.envelope_sender,
            "envelope_recipients": list(self.envelope_recipients),
            "from": self.sender,
            "to": self.to,
            "cc": self.cc,
            "subject": self.subject,
            "date": self.date,
            "message_id": self.message_id,
            "size": self.size,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.summary(), "text": self.text, "html": self.html}


def _new_message_id(sequence: int) -> str:
    # The random part keeps two processes that pick the same sequence from overwriting.
    return f"{sequence:06d}-{secrets.token_hex(3)}"


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        return part.get_content()
    except (LookupError, ValueError):
        # An unknown or lying charset must not lose the message; show what we can.
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", errors="replace")


def _header(message: EmailMessage, name: str) -> str:
    try:
        return str(message.get(name, ""))
    except (ValueError, IndexError):
        # A malformed header the parser cannot fold into a value: keep its raw text.
        return next((str(v) for k, v in message.raw_items() if k.lower() == name.lower()), "")


def _sender(message: EmailMessage) -> str:
    """The From header as a mail client shows it.

    A long name in another script is sent as several encoded words, which may split a word;
    RFC 2047 joins them, but Python's address parser leaves a space at each split
    ("Клиника за физикалну мед ицину"). Decoded as an unstructured header it reads right."""
    raw = next((v for k, v in message.raw_items() if k.lower() == "from"), None)
    if raw is None or "=?" not in raw:
        return _header(message, "From")
    try:
        return str(make_header(decode_header(" ".join(raw.split()))))
    except (LookupError, ValueError, HeaderParseError):
        return _header(message, "From")


def parse_message(
    message_id: str, received_at: str, sender: str, recipients: list[str], raw: bytes
) -> CaughtMessage:
    # SMTP delivers CRLF line ends; readers of the text and HTML bodies expect "\n".
    message = message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default)
    return CaughtMessage(
        id=message_id,
        received_at=received_at,
        envelope_sender=sender,
        envelope_recipients=tuple(recipients),
        sender=_sender(message),
        to=_header(message, "To"),
        cc=_header(message, "Cc"),
        subject=_header(message, "Subject"),
        date=_header(message, "Date"),
        message_id=_header(message, "Message-ID"),
        text=_body(message, "plain"),
        html=_body(message, "html"),
        size=len(raw),
        raw=raw,
    )


def _eml_bytes(received_at: str, sender: str, recipients: list[str], raw: bytes) -> bytes:
    envelope = {"received_at": received_at, "sender": sender, "recipients": recipients}
    return ENVELOPE_HEADER + json.dumps(envelope).encode("ascii") + b"\r\n" + raw


def _read_eml(path: Path) -> CaughtMessage:
    first_line, _, raw = path.read_bytes().partition(b"\r\n")
    if not first_line.startswith(ENVELOPE_HEADER):
        raise ValueError(f"{path.name} was not written by the mail catcher")
    envelope = json.loads(first_line[len(ENVELOPE_HEADER) :])
    return parse_message(
        path.stem, envelope["received_at"], envelope["sender"], envelope["recipients"], raw
    )


class MailStore:
    """Every message the catcher took, plus the faults tests asked it to inject.

    With a ``folder`` each message is one ``<id>.eml`` file, so messages survive a restart and
    the SMTP server and the web page can run in different processes. The fault count is kept
    in memory: it is only seen by the process the web API call reached.
    """

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder is not None else None
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self._messages: dict[str, CaughtMessage] = {}
        self._failures_to_inject = 0
        self._lock = threading.RLock()

    def add(self, sender: str, recipients: list[str], raw: bytes) -> CaughtMessage:
        received_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        with self._lock:
            self._refresh()
            sequence = max((m.sequence for m in self._messages.values()), default=0) + 1
            message = parse_message(
                _new_message_id(sequence), received_at, sender, list(recipients), raw
            )
            if self.folder is not None:
                content = _eml_bytes(received_at, sender, list(recipients), raw)
                write_atomically(self.folder / f"{message.id}.eml", content)
            self._messages[message.id] = message
            return message

    def messages(self, to: str | None = None) -> list[CaughtMessage]:
        """Newest first; only those ``to`` received when it is given."""
        with self._lock:
            self._refresh()
            found = sorted(self._messages.values(), key=lambda m: (m.sequence, m.id), reverse=True)
        if to:
            found = [m for m in found if m.is_addressed_to(to)]
        return found

    def get(self, message_id: str) -> CaughtMessage | None:
        if not MESSAGE_ID_PATTERN.fullmatch(message_id):
            return None
        with self._lock:
            self._refresh()
            return self._messages.get(message_id)

    def clear(self) -> int:
        """Forget every message; returns how many there were."""
        with self._lock:
            self._refresh()
            deleted = len(self._messages)
            if self.folder is not None:
                for path in self._eml_files():
                    path.unlink(missing_ok=True)
            self._messages.clear()
            return deleted

    def fail_next(self, count: int) -> None:
        """Make the next ``count`` deliveries fail with a temporary error (0 stops it)."""
        if count < 0:
            raise ValueError("count must not be negative")
        with self._lock:
            self._failures_to_inject = count

    @property
    def failures_to_inject(self) -> int:
        return self._failures_to_inject

    def take_failure(self) -> bool:
        """Whether this delivery is one that must fail; counts it if so."""
        with self._lock:
            if self._failures_to_inject == 0:
                return False
            self._failures_to_inject -= 1
            return True

    def _eml_files(self) -> list[Path]:
        return [p for p in self.folder.glob("*.eml") if MESSAGE_ID_PATTERN.fullmatch(p.stem)]

    def _refresh(self) -> None:
        """Follow the folder: another process may have added or cleared messages."""
        if self.folder is None:
            return
        on_disk = {p.stem: p for p in self._eml_files()}
        for gone in self._messages.keys() - on_disk.keys():
            del self._messages[gone]
        for message_id in on_disk.keys() - self._messages.keys():
            try:
                self._messages[message_id] = _read_eml(on_disk[message_id])
            except FileNotFoundError:
                continue  # cleared by another process while we looked
