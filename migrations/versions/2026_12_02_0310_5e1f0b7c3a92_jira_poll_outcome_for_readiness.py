"""the Jira poll's outcome on its cursor, for /readyz and /metrics

Revision ID: 5e1f0b7c3a92
Revises: 9a4cb011547c
Create Date: 2026-12-02 03:10:00.000000

When the last poll ended either way, why it failed if it did (its kind and message, as the
worker logged it), and failures in a row and in all. Existing cursors start at no failures.
"""
from alembic import op
import sqlalchemy as sa

import vcpay.database


# revision identifiers, used by Alembic.
revision = '5e1f0b7c3a92'
down_revision = '9a4cb011547c'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('jira_poll_cursors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempted_at', vcpay.database.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('failures', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('errors', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('jira_poll_cursors', schema=None) as batch_op:
        batch_op.drop_column('errors')
        batch_op.drop_column('failures')
        batch_op.drop_column('last_error')
        batch_op.drop_column('attempted_at')
