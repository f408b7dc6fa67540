"""Outbound number selection: the template's pinned number, else the merchant's pool, else
the shared pool. Nothing usable is structural, never a reason to retry."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import bindparam, select
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


_COLUMNS = (PhoneNumber.id, PhoneNumber.e164, PhoneNumber.max_channels)
_PINNED = select(*_COLUMNS, PhoneNumber.enabled, PhoneNumber.merchant_id).where(
    PhoneNumber.e164 == bindparam("e164")
)
_MERCHANT_POOL = (
    select(*_COLUMNS)
    .where(PhoneNumber.merchant_id == bindparam("merchant_id"), PhoneNumber.enabled.is_(True))
    .order_by(PhoneNumber.e164)
)
_SHARED_POOL = (
    select(*_COLUMNS)
    .where(PhoneNumber.merchant_id.is_(None), PhoneNumber.enabled.is_(True))
    .order_by(PhoneNumber.e164)
)


def outbound_numbers(
    session: Session, merchant_id: uuid.UUID, pinned_e164: str | None
) -> list[OutboundNumber]:
    """Numbers to try, best first. Raises NumberUnavailable when there are none."""
    if pinned_e164 is not None:
        pinned = session.execute(_PINNED, {"e164": pinned_e164}).first()
        if pinned is None:
            raise NumberUnavailable("pinned number is not registered")
        if not pinned.enabled:
            raise NumberUnavailable("pinned number is disabled")
        if pinned.merchant_id not in (None, merchant_id):
            raise NumberUnavailable("pinned number belongs to another merchant")
        return [OutboundNumber(pinned.id, pinned.e164, pinned.max_channels)]
    for statement, params in (
        (_MERCHANT_POOL, {"merchant_id": merchant_id}),
        (_SHARED_POOL, {}),
    ):
        pool = [OutboundNumber(*row) for row in session.execute(statement, params)]
        if pool:
            return pool
    raise NumberUnavailable("no enabled number in the merchant's pool or the shared pool")
