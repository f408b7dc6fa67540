"""The do-not-call gate: a merchant's own list and the global one, as a condition on the
lead row so the admission view answers it in the same round trip as everything else."""

from __future__ import annotations

from sqlalchemy import exists, or_

from shared.db.models import Lead, Suppression

RECIPIENT_SUPPRESSED = exists().where(
    Suppression.e164 == Lead.phone,
    or_(Suppression.merchant_id == Lead.merchant_id, Suppression.merchant_id.is_(None)),
)
