"""audit entries keep the address the action came from

Revision ID: 42766889863b
Revises: 5c1e7a93d2b4
Create Date: 2026-12-01 20:05:00

The audit log page says where each action came from: the client's address as vcpay saw it
(through the trusted proxies). Entries already written, and those written by a worker or the
command line, have none.
"""

import sqlalchemy as sa
from alembic import op

revision = "42766889863b"
down_revision = "5c1e7a93d2b4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entries") as batch:
        batch.add_column(sa.Column("address", sa.String(length=45), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_entries") as batch:
        batch.drop_column("address")
