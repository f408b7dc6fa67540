"""Outbound number selection: the template's pinned number, else the merchant's pool, else
the shared pool. Nothing usable is structural, never a reason to retry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import PhoneNumber


@dataclass(frozen=True)
class OutboundNumber:
    id: uuid.UUID
    e164: str
    max_channels: int


class NumberUnavailable(Exception):
    """No number can carry this lead's call; `cause` says which configuration is missing."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def _choices(rows: list[PhoneNumber]) -> list[OutboundNumber]:
    return [OutboundNumber(n.id, n.e164, n.max_channels) for n in rows]


def outbound_numbers(
    session: Session, merchant_id: uuid.UUID, pinned_e164: str | None
) -> list[OutboundNumber]:
    """Numbers to try, best first. Raises NumberUnavailable when there are none."""
    if pinned_e164 is not None:
        pinned = session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == pinned_e164))
        if pinned is None:
            raise NumberUnavailable("pinned number is not registered")
        if not pinned.enabled:
            raise NumberUnavailable("pinned number is disabled")
        if pinned.merchant_id not in (None, merchant_id):
            raise NumberUnavailable("pinned number belongs to another merchant")
        return _choices([pinned])
    for owner in (merchant_id, None):
        owner_filter = (
            PhoneNumber.merchant_id == owner if owner else PhoneNumber.merchant_id.is_(None)
        )
        pool = session.scalars(
            select(PhoneNumber)
            .where(owner_filter, PhoneNumber.enabled.is_(True))
            .order_by(PhoneNumber.e164)
        ).all()
        if pool:
            return _choices(list(pool))
    raise NumberUnavailable("no enabled number in the merchant's pool or the shared pool")
