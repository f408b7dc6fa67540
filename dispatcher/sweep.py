"""Claims due SCHEDULED leads for dispatch: FOR UPDATE SKIP LOCKED, so any number of
sweepers can run at once without claiming a lead twice."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.db.models import Lead
from shared.enums import DeferralReason, LeadStatus


def claim_due(session: Session, *, limit: int) -> list[uuid.UUID]:
    due = (
        select(Lead.id)
        .where(Lead.status == LeadStatus.SCHEDULED, Lead.next_attempt_at <= func.now())
        .order_by(Lead.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(
        session.scalars(
            update(Lead)
            .where(Lead.id.in_(due.scalar_subquery()))
            .values(status=LeadStatus.QUEUED, queued_at=func.now())
            .returning(Lead.id)
        )
    )


def claim_if_due(session: Session, lead_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Claim just these leads if they are already due (fresh intake skips the sweep)."""
    return list(
        session.scalars(
            update(Lead)
            .where(
                Lead.id.in_(list(lead_ids)),
                Lead.status == LeadStatus.SCHEDULED,
                Lead.next_attempt_at <= func.now(),
            )
            .values(status=LeadStatus.QUEUED, queued_at=func.now())
            .returning(Lead.id)
        )
    )


def requeue_stale(session: Session, *, older_than_s: float) -> list[uuid.UUID]:
    """QUEUED leads whose dispatch task was lost go back to SCHEDULED, due now."""
    return list(
        session.scalars(
            update(Lead)
            .where(
                Lead.status == LeadStatus.QUEUED,
                Lead.queued_at < func.now() - timedelta(seconds=older_than_s),
            )
            .values(
                status=LeadStatus.SCHEDULED,
                next_attempt_at=func.now(),
                last_deferral_reason=DeferralReason.DISPATCH_LOST,
                queued_at=None,
            )
            .returning(Lead.id)
        )
    )
