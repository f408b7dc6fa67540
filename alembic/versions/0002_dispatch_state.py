"""dispatch state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 14:05:13.591040
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_webhooks_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.add_column(
        "call_attempts", sa.Column("channel_token_id", sa.String(length=64), nullable=True)
    )
    op.add_column(
        "call_attempts", sa.Column("media_worker_id", sa.String(length=128), nullable=True)
    )
    op.add_column(
        "call_attempts", sa.Column("media_reservation_id", sa.String(length=64), nullable=True)
    )
    op.add_column("call_attempts", sa.Column("outcome_source", sa.String(length=16), nullable=True))
    op.add_column("call_attempts", sa.Column("error", sa.Text(), nullable=True))
    op.add_column(
        "call_attempts", sa.Column("finalized_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("leads", sa.Column("deferrals", sa.Integer(), server_default="0", nullable=False))
    op.add_column("leads", sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("leads", "queued_at")
    op.drop_column("leads", "deferrals")
    op.drop_column("call_attempts", "finalized_at")
    op.drop_column("call_attempts", "error")
    op.drop_column("call_attempts", "outcome_source")
    op.drop_column("call_attempts", "media_reservation_id")
    op.drop_column("call_attempts", "media_worker_id")
    op.drop_column("call_attempts", "channel_token_id")
    op.drop_index(
        "ix_webhooks_due",
        table_name="webhook_deliveries",
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.drop_table("webhook_deliveries")
