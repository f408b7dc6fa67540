"""Channel tokens: a lease semaphore per outbound number, capping its concurrent calls.

One sorted set per number: member = token id, score = lease expiry in ms. A token is taken
atomically under the cap, renewed while its call lives, and released at most once; a lease whose
holder crashed expires and is dropped by the next acquire or by the reconciler. `ChannelLeases`
serves the sync client (Celery tasks), `AsyncChannelLeases` the asyncio one (media worker).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import redis
import redis.asyncio

from shared import redis_keys
from shared.coordination._scripts import clock_arg, load_lua, positive, to_ms

_ACQUIRE_LUA = load_lua("channel_acquire.lua")
_RENEW_LUA = load_lua("lease_renew.lua")
_IN_USE_LUA = load_lua("channel_in_use.lua")
_RECLAIM_LUA = load_lua("channel_reclaim.lua")

ScriptArgs = list[int | str]


def _acquire_args(
    max_channels: int, lease_ttl_s: float, now_ms: int | None, token_id: str
) -> ScriptArgs:
    cap = positive(max_channels, "max_channels")
    return [clock_arg(now_ms), cap, to_ms(lease_ttl_s, "lease_ttl_s"), token_id]


def _renew_args(lease_ttl_s: float, now_ms: int | None, token_id: str) -> ScriptArgs:
    return [clock_arg(now_ms), to_ms(lease_ttl_s, "lease_ttl_s"), token_id]


class ChannelLeases:
    """Channel leases over the sync Redis client."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._renew = client.register_script(_RENEW_LUA)
        self._in_use = client.register_script(_IN_USE_LUA)
        self._reclaim = client.register_script(_RECLAIM_LUA)

    def try_acquire(
        self,
        number_id: str,
        *,
        max_channels: int,
        lease_ttl_s: float,
        now_ms: int | None = None,
    ) -> str | None:
        """A new token id if fewer than `max_channels` leases are live, else None."""
        token_id = secrets.token_hex(12)
        args = _acquire_args(max_channels, lease_ttl_s, now_ms, token_id)
        acquired = self._acquire(keys=[redis_keys.channel_leases(number_id)], args=args)
        return token_id if int(acquired) == 1 else None

    def release(self, number_id: str, token_id: str) -> bool:
        """Give the channel back; True only the first time (a duplicate frees nothing)."""
        return bool(self._client.zrem(redis_keys.channel_leases(number_id), token_id))

    def renew(
        self, number_id: str, token_id: str, *, lease_ttl_s: float, now_ms: int | None = None
    ) -> bool:
        """Extend a held lease to now + `lease_ttl_s`; False means the channel is lost."""
        args = _renew_args(lease_ttl_s, now_ms, token_id)
        return int(self._renew(keys=[redis_keys.channel_leases(number_id)], args=args)) == 1

    def in_use(self, number_id: str, now_ms: int | None = None) -> int:
        """How many unexpired leases the number holds (read-only)."""
        key = redis_keys.channel_leases(number_id)
        return int(self._in_use(keys=[key], args=[clock_arg(now_ms)]))

    def reclaim_expired(self, number_id: str, now_ms: int | None = None) -> int:
        """Drop expired leases (crashed holders); returns how many were reclaimed."""
        key = redis_keys.channel_leases(number_id)
        return int(self._reclaim(keys=[key], args=[clock_arg(now_ms)]))

    @contextmanager
    def lease(
        self,
        number_id: str,
        *,
        max_channels: int,
        lease_ttl_s: float,
        now_ms: int | None = None,
    ) -> Iterator[str | None]:
        """Yield a token id (or None when none is free) and always release it on exit."""
        token_id = self.try_acquire(
            number_id, max_channels=max_channels, lease_ttl_s=lease_ttl_s, now_ms=now_ms
        )
        try:
            yield token_id
        finally:
            if token_id is not None:
                self.release(number_id, token_id)


class AsyncChannelLeases:
    """Channel leases over the asyncio Redis client: what a live call needs (renew, release)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._acquire = client.register_script(_ACQUIRE_LUA)
        self._renew = client.register_script(_RENEW_LUA)

    async def try_acquire(
        self,
        number_id: str,
        *,
        max_channels: int,
        lease_ttl_s: float,
        now_ms: int | None = None,
    ) -> str | None:
        """A new token id if fewer than `max_channels` leases are live, else None."""
        token_id = secrets.token_hex(12)
        args = _acquire_args(max_channels, lease_ttl_s, now_ms, token_id)
        acquired = await self._acquire(keys=[redis_keys.channel_leases(number_id)], args=args)
        return token_id if int(acquired) == 1 else None

    async def release(self, number_id: str, token_id: str) -> bool:
        """Give the channel back; True only the first time (a duplicate frees nothing)."""
        return bool(await self._client.zrem(redis_keys.channel_leases(number_id), token_id))

    async def renew(
        self, number_id: str, token_id: str, *, lease_ttl_s: float, now_ms: int | None = None
    ) -> bool:
        """Extend a held lease to now + `lease_ttl_s`; False means the channel is lost."""
        args = _renew_args(lease_ttl_s, now_ms, token_id)
        renewed = await self._renew(keys=[redis_keys.channel_leases(number_id)], args=args)
        return int(renewed) == 1

    @asynccontextmanager
    async def lease(
        self,
        number_id: str,
        *,
        max_channels: int,
        lease_ttl_s: float,
        now_ms: int | None = None,
    ) -> AsyncIterator[str | None]:
        """Yield a token id (or None when none is free) and always release it on exit."""
        token_id = await self.try_acquire(
            number_id, max_channels=max_channels, lease_ttl_s=lease_ttl_s, now_ms=now_ms
        )
        try:
            yield token_id
        finally:
            if token_id is not None:
                await self.release(number_id, token_id)
