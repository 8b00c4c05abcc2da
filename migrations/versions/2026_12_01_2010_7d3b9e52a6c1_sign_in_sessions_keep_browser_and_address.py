"""sign-in sessions keep the browser and the address they began from

Revision ID: 7d3b9e52a6c1
Revises: 42766889863b
Create Date: 2026-12-01 20:10:00

A person's sessions page names each sign-in's browser (from its User-Agent) and address.
Sign-ins made before have neither, and are shown as an unknown browser.
"""

import sqlalchemy as sa
from alembic import op

revision = "7d3b9e52a6c1"
down_revision = "42766889863b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sign_in_sessions") as batch:
        batch.add_column(sa.Column("user_agent", sa.String(length=400), nullable=True))
        batch.add_column(sa.Column("address", sa.String(length=45), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sign_in_sessions") as batch:
        batch.drop_column("address")
        batch.drop_column("user_agent")
