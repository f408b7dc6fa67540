"""`keep_held`: renews an attempt's channel lease and media reservation while its call lives."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog

from shared.coordination import AsyncChannelLeases, AsyncMediaSlots

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Held:
    """What admission (or the inbound answer) took for the attempt; finalization frees it."""

    number_id: str | None
    channel_token_id: str | None
    media_worker_id: str | None
    media_reservation_id: str | None


async def keep_held(
    held: Held,
    redis: aioredis.Redis,
    *,
    channel_lease_ttl_s: float,
    media_reservation_ttl_s: float,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Renew every third of the shorter TTL until cancelled; a lost lease is logged (the call
    goes on: cutting a live customer off is worse than running one call over the cap)."""
    leases, slots = AsyncChannelLeases(redis), AsyncMediaSlots(redis)
    interval_s = min(channel_lease_ttl_s, media_reservation_ttl_s) / 3
    while True:
        await sleep(interval_s)
        try:
            if held.number_id and held.channel_token_id:
                if not await leases.renew(
                    held.number_id, held.channel_token_id, lease_ttl_s=channel_lease_ttl_s
                ):
                    log.warning("channel_lease_lost")
            if held.media_worker_id and held.media_reservation_id:
                if not await slots.renew(
                    held.media_worker_id,
                    held.media_reservation_id,
                    reservation_ttl_s=media_reservation_ttl_s,
                ):
                    log.warning("media_reservation_lost")
        except Exception as exc:  # Redis blips: keep trying while the call lives
            log.warning("held_renew_failed", error=repr(exc))
