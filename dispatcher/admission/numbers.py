"""Outbound number selection: the template's pinned number, else the merchant's pool, else
the shared pool. Nothing usable is structural, never a reason to retry."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from shared.db.models import PhoneNumber


@dataclass(frozen=True)
class OutboundNumber:
    id: uuid.UUID
    e164: str
    max_channels: int


@dataclass(frozen=True)
class NumberRow:
    """A number as the admission view loads it: usable or not, and whose."""

    id: uuid.UUID
    e164: str
    max_channels: int
    enabled: bool
    merchant_id: uuid.UUID | None

    @classmethod
    def from_json(cls, item: Sequence[Any]) -> NumberRow:
        number_id, e164, max_channels, enabled, merchant_id = item
        return cls(
            uuid.UUID(number_id),
            e164,
            int(max_channels),
            bool(enabled),
            uuid.UUID(merchant_id) if merchant_id else None,
        )

    def outbound(self) -> OutboundNumber:
        return OutboundNumber(self.id, self.e164, self.max_channels)


class NumberUnavailable(Exception):
    """No number can carry this lead's call; `cause` says which configuration is missing."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


_REGISTERED = select(PhoneNumber.id).where(PhoneNumber.e164 == bindparam("e164"))


def outbound_numbers(
    connection: Connection,
    merchant_id: uuid.UUID,
    pinned_e164: str | None,
    candidates: Sequence[NumberRow],
) -> list[OutboundNumber]:
    """Numbers to try, best first, from the merchant's and the shared pool's `candidates`.
    Raises NumberUnavailable when there are none."""
    if pinned_e164 is not None:
        pinned = next((row for row in candidates if row.e164 == pinned_e164), None)
        if pinned is None:
            # Not among ours or the shared pool's: only the error message needs to know why.
            if connection.scalar(_REGISTERED, {"e164": pinned_e164}) is None:
                raise NumberUnavailable("pinned number is not registered")
            raise NumberUnavailable("pinned number belongs to another merchant")
        if not pinned.enabled:
            raise NumberUnavailable("pinned number is disabled")
        return [pinned.outbound()]
    for owner in (merchant_id, None):
        pool = [row.outbound() for row in candidates if row.merchant_id == owner and row.enabled]
        if pool:
            return pool
    raise NumberUnavailable("no enabled number in the merchant's pool or the shared pool")
