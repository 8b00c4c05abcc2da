"""several stripe accounts per clinic: named links, a default, clinicians routed

Revision ID: 8c4d2e6f1a37
Revises: 440c85641222
Create Date: 2026-12-02 10:30:00.000000

A clinic may now have a live link to several accounts (one live link per account), each with
a name; exactly one live link per clinic is its default. Existing live links become their
clinic's default, named after Stripe's display name. Routes send a clinician's payments in a
clinic to another of its links.
"""
from alembic import op
import sqlalchemy as sa

import vcpay.database


# revision identifiers, used by Alembic.
revision = '8c4d2e6f1a37'
down_revision = '440c85641222'
branch_labels = None
depends_on = None

LIVE = sa.text("state = 'linked'")
LIVE_DEFAULT = sa.text("state = 'linked' AND is_default")

links = sa.table(
    'stripe_links',
    sa.column('id', sa.Integer),
    sa.column('state', sa.String),
    sa.column('display_name', sa.String),
    sa.column('name', sa.String),
    sa.column('is_default', sa.Boolean),
    sa.column('removal_cause', sa.String),
    sa.column('removed_at', vcpay.database.UTCDateTime(timezone=True)),
)


def upgrade():
    with op.batch_alter_table('stripe_links', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('is_default', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.drop_index('uq_stripe_links_one_live_link_per_clinic', sqlite_where=LIVE, postgresql_where=LIVE)
    op.execute(links.update().values(name=links.c.display_name))
    op.execute(links.update().where(links.c.state == 'linked').values(is_default=True))
    with op.batch_alter_table('stripe_links', schema=None) as batch_op:
        batch_op.create_index('uq_stripe_links_one_live_link_per_account', ['clinic_id', 'account_id'], unique=True, sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.create_index('uq_stripe_links_one_default_per_clinic', ['clinic_id'], unique=True, sqlite_where=LIVE_DEFAULT, postgresql_where=LIVE_DEFAULT)

    op.create_table('stripe_account_routes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clinic_id', sa.Integer(), nullable=False),
    sa.Column('clinician_id', sa.Integer(), nullable=False),
    sa.Column('link_id', sa.Integer(), nullable=False),
    sa.Column('created_at', vcpay.database.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['clinic_id'], ['clinics.id'], name=op.f('fk_stripe_account_routes_clinic_id_clinics'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['clinician_id'], ['users.id'], name=op.f('fk_stripe_account_routes_clinician_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['link_id'], ['stripe_links.id'], name=op.f('fk_stripe_account_routes_link_id_stripe_links'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_account_routes')),
    sa.UniqueConstraint('clinic_id', 'clinician_id', name=op.f('uq_stripe_account_routes_clinic_id_clinician_id'))
    )
    with op.batch_alter_table('stripe_account_routes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stripe_account_routes_link_id'), ['link_id'], unique=False)


def downgrade():
    with op.batch_alter_table('stripe_account_routes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stripe_account_routes_link_id'))
    op.drop_table('stripe_account_routes')
    # One live link per clinic again: the clinic keeps its default; the others are removed.
    op.execute(
        links.update()
        .where(links.c.state == 'linked', links.c.is_default == sa.false())
        .values(state='removed', removal_cause='by_admin', removed_at=sa.func.current_timestamp())
    )
    with op.batch_alter_table('stripe_links', schema=None) as batch_op:
        batch_op.drop_index('uq_stripe_links_one_default_per_clinic', sqlite_where=LIVE_DEFAULT, postgresql_where=LIVE_DEFAULT)
        batch_op.drop_index('uq_stripe_links_one_live_link_per_account', sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.create_index('uq_stripe_links_one_live_link_per_clinic', ['clinic_id'], unique=True, sqlite_where=LIVE, postgresql_where=LIVE)
        batch_op.drop_column('is_default')
        batch_op.drop_column('name')
