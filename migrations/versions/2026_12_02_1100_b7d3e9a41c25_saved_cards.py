"""saved cards, charged after the call

Revision ID: b7d3e9a41c25
Revises: 8c4d2e6f1a37
Create Date: 2026-12-02 11:00:00.000000

A clinic may let patients save a card when they join (off by default); each card saved is a
row on the Stripe account it was saved on (one per card there). A payment request may be a
charge to a saved card, made without a Checkout page: its session and page are then empty.
"""

from alembic import op
import sqlalchemy as sa

import vcpay.database


# revision identifiers, used by Alembic.
revision = "b7d3e9a41c25"
down_revision = "8c4d2e6f1a37"
branch_labels = None
depends_on = None


def _foreign_keys(on: bool) -> None:
    """SQLite rebuilds a table to change a column (batch mode): with foreign keys enforced,
    dropping the old table would cascade to the rows that point at it (refunds, links).
    Off while this migration runs (before any row is written, so outside a transaction)."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")


def upgrade():
    _foreign_keys(False)
    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "saved_cards_allowed", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )

    op.create_table(
        "saved_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("setup_session_id", sa.String(length=255), nullable=False),
        sa.Column("setup_url", sa.String(length=2000), nullable=False),
        sa.Column("payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("brand", sa.String(length=20), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("exp_month", sa.Integer(), nullable=True),
        sa.Column("exp_year", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("consent_version", sa.String(length=20), nullable=False),
        sa.Column("saved_at", vcpay.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("removed_at", vcpay.database.UTCDateTime(timezone=True), nullable=True),
        sa.Column("removed_cause", sa.String(length=20), nullable=False),
        sa.Column("created_at", vcpay.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_saved_cards_call_id_calls"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["clinic_id"],
            ["clinics.id"],
            name=op.f("fk_saved_cards_clinic_id_clinics"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["call_participants.id"],
            name=op.f("fk_saved_cards_participant_id_call_participants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_cards")),
        sa.UniqueConstraint(
            "account_id",
            "payment_method_id",
            name=op.f("uq_saved_cards_account_id_payment_method_id"),
        ),
        sa.UniqueConstraint("setup_session_id", name=op.f("uq_saved_cards_setup_session_id")),
    )
    with op.batch_alter_table("saved_cards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_saved_cards_call_id"), ["call_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_saved_cards_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_saved_cards_participant_id"), ["participant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_saved_cards_saved_at"), ["saved_at"], unique=False)

    with op.batch_alter_table("payment_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("off_session", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("saved_card_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_payment_requests_saved_card_id_saved_cards"),
            "saved_cards",
            ["saved_card_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.alter_column(
            "checkout_session_id", existing_type=sa.String(length=255), nullable=True
        )
        batch_op.alter_column("checkout_url", existing_type=sa.String(length=2000), nullable=True)
    _foreign_keys(True)


def downgrade():
    _foreign_keys(False)
    with op.batch_alter_table("payment_requests", schema=None) as batch_op:
        batch_op.alter_column("checkout_url", existing_type=sa.String(length=2000), nullable=False)
        batch_op.alter_column(
            "checkout_session_id", existing_type=sa.String(length=255), nullable=False
        )
        batch_op.drop_constraint(
            batch_op.f("fk_payment_requests_saved_card_id_saved_cards"), type_="foreignkey"
        )
        batch_op.drop_column("saved_card_id")
        batch_op.drop_column("off_session")

    with op.batch_alter_table("saved_cards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_cards_saved_at"))
        batch_op.drop_index(batch_op.f("ix_saved_cards_participant_id"))
        batch_op.drop_index(batch_op.f("ix_saved_cards_clinic_id"))
        batch_op.drop_index(batch_op.f("ix_saved_cards_call_id"))

    op.drop_table("saved_cards")
    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.drop_column("saved_cards_allowed")
    _foreign_keys(True)
