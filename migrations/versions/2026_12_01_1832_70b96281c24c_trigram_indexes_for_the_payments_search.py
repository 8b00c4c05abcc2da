"""trigram indexes for the payments search, on PostgreSQL with pg_trgm

Revision ID: 70b96281c24c
Revises: d94443c2b581
Create Date: 2026-12-01 18:32:28

The Payments page searches four columns with ILIKE '%…%', which no B-tree index serves: on a
clinic with 100,000 payments a receipt number read off a bank statement was a read of every
row. A GIN trigram index on each column turns it into an index lookup (PostgreSQL combines
the four with a bitmap OR).

Made only where they can be: on PostgreSQL whose pg_trgm extension is installed or can be
created here (it ships with PostgreSQL's contrib modules and is trusted, so the database's
owner may create it). Elsewhere the search still works, reading the rows, and a warning says
what to install. The models do not declare these indexes (vcpay.database.SEARCH_INDEXES).

A plain CREATE INDEX holds off writes to payment_requests while it builds (seconds for 100,000
rows); on a much larger table, build them first with CREATE INDEX CONCURRENTLY under the same
names, and this migration leaves them be.
"""
import logging

from alembic import op
from sqlalchemy.exc import DBAPIError

# revision identifiers, used by Alembic.
revision = '70b96281c24c'
down_revision = 'd94443c2b581'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

SEARCHED = ("description", "receipt_number", "patient_name", "patient_email")


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if not _trigrams_available(bind):
        log.warning(
            "PostgreSQL has no pg_trgm extension here (install PostgreSQL's contrib modules, "
            "or ask the database's owner to run CREATE EXTENSION pg_trgm): the Payments "
            "search reads every row of a clinic until it does"
        )
        return
    for column in SEARCHED:
        op.execute(
            f"CREATE INDEX IF NOT EXISTS ix_payment_requests_{column}_trgm "
            f"ON payment_requests USING gin ({column} gin_trgm_ops)"
        )


def _trigrams_available(bind) -> bool:
    installed = "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"
    if bind.exec_driver_sql(installed).first():
        return True
    available = "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
    if not bind.exec_driver_sql(available).first():
        return False
    try:
        with bind.begin_nested():  # a refusal must not end the migration's transaction
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError:
        return False
    return True


def downgrade():
    # The extension stays: something else in the database may use it.
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in SEARCHED:
        op.execute(f"DROP INDEX IF EXISTS ix_payment_requests_{column}_trgm")
