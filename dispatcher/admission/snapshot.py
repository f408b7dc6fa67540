"""Loads what admission needs to know about one queued lead, in one read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
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


def load_queued_lead(session: Session, lead_id: uuid.UUID) -> LeadSnapshot | None:
    """The lead if it is still QUEUED (else None: a redelivered task has nothing to do)."""
    row = session.execute(
        select(Lead, Merchant)
        .join(Merchant, Merchant.id == Lead.merchant_id)
        .where(Lead.id == lead_id, Lead.status == LeadStatus.QUEUED)
    ).first()
    if row is None:
        return None
    lead, merchant = row
    return LeadSnapshot(
        id=lead.id,
        merchant_id=lead.merchant_id,
        template_id=lead.template_id,
        phone=lead.phone,
        payload=lead.payload,
        deadline=lead.deadline,
        timezone=lead.timezone,
        deferrals=lead.deferrals,
        definition=definition(session, lead.template_id),
        merchant_timezone=merchant.default_timezone,
        rate_limit_calls=merchant.rate_limit_calls,
        rate_limit_window_s=merchant.rate_limit_window_s,
    )
