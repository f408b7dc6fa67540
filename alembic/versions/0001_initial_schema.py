"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-21 13:51:23.495143
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "merchants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("webhook_url", sa.Text(), nullable=True),
        sa.Column("webhook_secret", sa.String(length=128), nullable=False),
        sa.Column("default_timezone", sa.String(length=64), nullable=False),
        sa.Column("rate_limit_calls", sa.Integer(), nullable=True),
        sa.Column("rate_limit_window_s", sa.Integer(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "phone_numbers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column(
            "provider",
            sa.Enum(
                "twilio",
                name="number_provider",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("max_channels", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("max_channels > 0", name="max_channels_positive"),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("e164"),
    )
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=True),
        sa.Column("e164", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_suppressions_scope_phone",
        "suppressions",
        ["merchant_id", "e164"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", postgresql.JSONB(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("merchant_id", "name", "version"),
    )
    op.create_index(
        "uq_templates_active_name",
        "templates",
        ["merchant_id", "name"],
        unique=True,
        postgresql_where=sa.text("active"),
    )
    op.create_table(
        "leads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("merchant_id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column(
            "direction",
            sa.Enum(
                "OUTBOUND",
                "INBOUND",
                name="direction",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "SCHEDULED",
                "QUEUED",
                "DIALING",
                "IN_CALL",
                "FINISHED",
                "CANCELLED",
                name="lead_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "outcome",
            sa.Enum(
                "CONFIRMED",
                "CANCELLED_BY_CUSTOMER",
                "RESCHEDULED",
                "WRONG_PERSON",
                "NOT_INTERESTED",
                "CALLBACK_REQUESTED",
                "TRANSFERRED",
                "COMPLETED",
                "NO_RESPONSE",
                "NO_ANSWER",
                "BUSY",
                "FAILED",
                "VOICEMAIL",
                "NUMBER_UNAVAILABLE",
                "DNC",
                "INVALID_PHONE",
                "EXPIRED",
                "MAX_ATTEMPTS",
                "CANCELLED",
                name="outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("last_deferral_reason", sa.String(length=64), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("attempts >= 0 AND attempts <= max_attempts", name="attempts_in_range"),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("merchant_id", "idempotency_key", name="uq_leads_idempotency"),
    )
    op.create_index(
        "ix_leads_due",
        "leads",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'SCHEDULED'"),
    )
    op.create_index(
        "ix_leads_merchant_page", "leads", ["merchant_id", "created_at", "id"], unique=False
    )
    op.create_index(
        "ix_leads_merchant_status_page",
        "leads",
        ["merchant_id", "status", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "call_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=False),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("number_id", sa.Uuid(), nullable=True),
        sa.Column("provider_call_sid", sa.String(length=64), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "CREATED",
                "DIALING",
                "RINGING",
                "IN_PROGRESS",
                "ENDED",
                name="attempt_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "outcome",
            sa.Enum(
                "CONFIRMED",
                "CANCELLED_BY_CUSTOMER",
                "RESCHEDULED",
                "WRONG_PERSON",
                "NOT_INTERESTED",
                "CALLBACK_REQUESTED",
                "TRANSFERRED",
                "COMPLETED",
                "NO_RESPONSE",
                "NO_ANSWER",
                "BUSY",
                "FAILED",
                "VOICEMAIL",
                "NUMBER_UNAVAILABLE",
                "DNC",
                "INVALID_PHONE",
                "EXPIRED",
                "MAX_ATTEMPTS",
                "CANCELLED",
                name="attempt_outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("dialed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("transcript", postgresql.JSONB(), nullable=False),
        sa.Column("events", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["number_id"],
            ["phone_numbers.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("lead_id", "attempt_no", name="uq_attempts_lead_no"),
        sa.UniqueConstraint("provider_call_sid"),
    )


def downgrade() -> None:
    op.drop_table("call_attempts")
    op.drop_index("ix_leads_merchant_status_page", table_name="leads")
    op.drop_index("ix_leads_merchant_page", table_name="leads")
    op.drop_index(
        "ix_leads_due", table_name="leads", postgresql_where=sa.text("status = 'SCHEDULED'")
    )
    op.drop_table("leads")
    op.drop_index(
        "uq_templates_active_name", table_name="templates", postgresql_where=sa.text("active")
    )
    op.drop_table("templates")
    op.drop_index(
        "uq_suppressions_scope_phone", table_name="suppressions", postgresql_nulls_not_distinct=True
    )
    op.drop_table("suppressions")
    op.drop_table("phone_numbers")
    op.drop_table("api_keys")
    op.drop_table("merchants")
