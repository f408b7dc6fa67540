"""Loads what admission needs to know about one queued lead, in one read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from dispatcher.template_cache import definition
from shared.db.models import Lead, Merchant
from shared.enums import LeadStatus
from shared.templates import TemplateDefinition


@dataclass(frozen=True)
class LeadSnapshot:
    id: uuid.UUID
    merchant_id: uuid.UUID
    template_id: uuid.UUID
    phone: str
    payload: dict[str, Any]
    deadline: datetime | None
    timezone: str | None
    deferrals: int
    definition: TemplateDefinition
    merchant_timezone: str
    rate_limit_calls: int | None
    rate_limit_window_s: int | None


# Built once: admission runs this for every dispatch, and constructing the statement
# costs more CPU than PostgreSQL spends answering it.
_QUEUED_LEAD = (
    select(
        Lead.id,
        Lead.merchant_id,
        Lead.template_id,
        Lead.phone,
        Lead.payload,
        Lead.deadline,
        Lead.timezone,
        Lead.deferrals,
        Merchant.default_timezone,
        Merchant.rate_limit_calls,
        Merchant.rate_limit_window_s,
    )
    .join(Merchant, Merchant.id == Lead.merchant_id)
    .where(Lead.id == bindparam("lead_id"), Lead.status == LeadStatus.QUEUED)
)


def load_queued_lead(session: Session, lead_id: uuid.UUID) -> LeadSnapshot | None:
    """The lead if it is still QUEUED (else None: a redelivered task has nothing to do)."""
    row = session.execute(_QUEUED_LEAD, {"lead_id": lead_id}).first()
    if row is None:
        return None
    return LeadSnapshot(
        id=row.id,
        merchant_id=row.merchant_id,
        template_id=row.template_id,
        phone=row.phone,
        payload=row.payload,
        deadline=row.deadline,
        timezone=row.timezone,
        deferrals=row.deferrals,
        definition=definition(session, row.template_id),
        merchant_timezone=row.default_timezone,
        rate_limit_calls=row.rate_limit_calls,
        rate_limit_window_s=row.rate_limit_window_s,
    )
