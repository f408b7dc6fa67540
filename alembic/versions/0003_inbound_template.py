"""inbound template per number, stream URL per attempt

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 14:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "phone_numbers", sa.Column("inbound_template", sa.String(length=200), nullable=True)
    )
    op.add_column("call_attempts", sa.Column("stream_url", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("call_attempts", "stream_url")
    op.drop_column("phone_numbers", "inbound_template")
