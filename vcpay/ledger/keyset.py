"""Where a page of payments starts: the (created_at, id) of the row before it, signed.

A position, not an offset: rows inserted meanwhile (always newer, at the top) shift nothing
after it, and the database seeks to it through the index instead of counting rows. It is
signed so the query string cannot be edited into something else; a tampered one is refused.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from vcpay.inputs import MAX_ID

SALT = "vcpay.ledger-position"


class CursorInvalid(ValueError):
    pass


@dataclass(frozen=True)
class Position:
    created_at: datetime
    id: int


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def encode(position: Position) -> str:
    return _serializer().dumps([position.created_at.isoformat(), position.id])


def decode(cursor: str) -> Position:
    try:
        moment, row_id = _serializer().loads(cursor)
        created_at = datetime.fromisoformat(moment).astimezone(UTC)
    except (BadSignature, TypeError, ValueError, OverflowError):
        raise CursorInvalid(cursor) from None
    if not isinstance(row_id, int) or not 0 < row_id <= MAX_ID:
        raise CursorInvalid(cursor)
    return Position(created_at, row_id)
