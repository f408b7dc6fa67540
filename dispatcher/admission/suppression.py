"""The do-not-call gate: a merchant's own list and the global one."""

from __future__ import annotations

import uuid

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import Session

from shared.db.models import Suppression

_SUPPRESSED = (
    select(Suppression.id)
    .where(
        Suppression.e164 == bindparam("e164"),
        or_(
            Suppression.merchant_id == bindparam("merchant_id"),
            Suppression.merchant_id.is_(None),
        ),
    )
    .limit(1)
)


def is_suppressed(session: Session, merchant_id: uuid.UUID, e164: str) -> bool:
    found = session.scalar(_SUPPRESSED, {"e164": e164, "merchant_id": merchant_id})
    return found is not None
