"""at most one active orchestrator per inbound number

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("templates", sa.Column("inbound_number", sa.String(length=20), nullable=True))
    # Templates saved before this revision were never orchestrators; the backfill only makes
    # the column true to the documents should one have been written by hand.
    op.execute(
        "UPDATE templates SET inbound_number = definition -> 'orchestrator' ->> 'inbound_number' "
        "WHERE definition -> 'orchestrator' ->> 'inbound_number' IS NOT NULL"
    )
    op.create_index(
        "uq_templates_inbound_orchestrator",
        "templates",
        ["inbound_number"],
        unique=True,
        postgresql_where=sa.text("active AND inbound_number IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_templates_inbound_orchestrator",
        table_name="templates",
        postgresql_where=sa.text("active AND inbound_number IS NOT NULL"),
    )
    op.drop_column("templates", "inbound_number")
