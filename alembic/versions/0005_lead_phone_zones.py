"""the phone number's time zones, stored on the lead at intake

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 21:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Leads stored before this revision keep NULL: admission looks their zones up itself.
    op.add_column("leads", sa.Column("phone_zones", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("leads", "phone_zones")
