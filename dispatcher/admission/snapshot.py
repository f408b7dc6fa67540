"""Loads what admission needs to know about one queued lead, in one statement: the lead and
its merchant, whether the recipient is suppressed, and the numbers that could carry the call."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from dispatcher.admission.numbers import NumberRow
from dispatcher.admission.suppression import RECIPIENT_SUPPRESSED
from dispatcher.template_cache import definition
from shared.db.driver_statement import DriverStatement
from shared.db.models import Lead, Merchant, PhoneNumber
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
    # The number's zones as intake stored them (None: not stored, look them up).
    phone_zones: list[str] | None = None
    # The do-not-call gate's answer: the merchant's own list or the global one.
    suppressed: bool = False
    # The merchant's numbers and the shared pool's, enabled or not, ordered by E.164.
    numbers: tuple[NumberRow, ...] = ()


_NUMBERS = (
    select(
        func.coalesce(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(
                        PhoneNumber.id,
                        PhoneNumber.e164,
                        PhoneNumber.max_channels,
                        PhoneNumber.enabled,
                        PhoneNumber.merchant_id,
                    ),
                    PhoneNumber.e164,
                )
            ),
            func.json_build_array(),
        )
    )
    .where(or_(PhoneNumber.merchant_id == Lead.merchant_id, PhoneNumber.merchant_id.is_(None)))
    .scalar_subquery()
)

# Built and compiled once: admission runs this for every dispatch. One round trip instead of
# one per gate.
_QUEUED_LEAD = DriverStatement(
    select(
        Lead.id,
        Lead.merchant_id,
        Lead.template_id,
        Lead.phone,
        Lead.payload,
        Lead.deadline,
        Lead.timezone,
        Lead.phone_zones,
        Lead.deferrals,
        Merchant.default_timezone,
        Merchant.rate_limit_calls,
        Merchant.rate_limit_window_s,
        RECIPIENT_SUPPRESSED.label("suppressed"),
        _NUMBERS.label("numbers"),
    )
    .join(Merchant, Merchant.id == Lead.merchant_id)
    .where(Lead.id == bindparam("lead_id"), Lead.status == LeadStatus.QUEUED)
)


def load_queued_lead(connection: Connection, lead_id: uuid.UUID) -> LeadSnapshot | None:
    """The lead if it is still QUEUED (else None: a redelivered task has nothing to do)."""
    row = _QUEUED_LEAD.execute(connection, lead_id=lead_id).fetchone()
    if row is None:
        return None
    (
        id_,
        merchant_id,
        template_id,
        phone,
        payload,
        deadline,
        timezone,
        phone_zones,
        deferrals,
        merchant_timezone,
        rate_limit_calls,
        rate_limit_window_s,
        suppressed,
        numbers,
    ) = row
    return LeadSnapshot(
        id=id_,
        merchant_id=merchant_id,
        template_id=template_id,
        phone=phone,
        payload=payload,
        deadline=deadline,
        timezone=timezone,
        phone_zones=phone_zones,
        deferrals=deferrals,
        definition=definition(connection, template_id),
        merchant_timezone=merchant_timezone,
        rate_limit_calls=rate_limit_calls,
        rate_limit_window_s=rate_limit_window_s,
        suppressed=suppressed,
        numbers=tuple(NumberRow.from_json(item) for item in numbers),
    )
