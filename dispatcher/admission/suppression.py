"""The do-not-call gate: a merchant's own list and the global one."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from shared.db.models import Suppression


def is_suppressed(session: Session, merchant_id: uuid.UUID, e164: str) -> bool:
    return (
        session.scalar(
            select(Suppression.id)
            .where(
                Suppression.e164 == e164,
                or_(Suppression.merchant_id == merchant_id, Suppression.merchant_id.is_(None)),
            )
            .limit(1)
        )
        is not None
    )
