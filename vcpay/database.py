"""The declarative base every model shares: naming convention, UTC timestamps."""

import sqlite3
from datetime import UTC, datetime

from sqlalchemy import DateTime, Engine, MetaData, TypeDecorator, event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry

# Named constraints let migrations drop or alter them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


# Trigram indexes for the Payments page's search (``ILIKE '%…%'``, which no B-tree serves):
# a migration makes them on PostgreSQL when its pg_trgm extension can be had. The models do not
# declare them, since SQLite and a PostgreSQL without the extension have none; comparing the
# models with a database leaves them out.
SEARCH_INDEXES = frozenset(
    f"ix_payment_requests_{column}_trgm"
    for column in ("description", "receipt_number", "patient_name", "patient_email")
)


def declared_by_the_models(object_, name, type_, reflected, compare_to) -> bool:
    """Alembic's ``include_object``: everything but the indexes only migrations make."""
    return not (type_ == "index" and reflected and compare_to is None and name in SEARCH_INDEXES)


class UTCDateTime(TypeDecorator):
    """Stores UTC and always hands back an aware datetime, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use vcpay.database.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


class CreatedAtMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@event.listens_for(Engine, "connect")
def _tune_sqlite(dbapi_connection, connection_record) -> None:
    """The embedded SQLite serves a web server and workers at once: with write-ahead logging
    readers never block the writer, and a writer waits for another instead of failing."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
