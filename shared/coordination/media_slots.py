"""Media-worker capacity: workers advertise slots with a heartbeat; dispatch reserves one.

Keys (see `shared.redis_keys`): a live set (worker id -> heartbeat expiry, ms), one hash per
worker (stream_url, slots, draining) and one reservations set per worker (reservation id ->
expiry, ms). A worker whose heartbeat lapsed is dead: the next reserve or reclaim drops it with its
reservations. Free slots = slots - unexpired reservations. `MediaSlots` serves the sync client
(dispatch, reconciler); `AsyncMediaSlots` the media worker's event loop.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio

from shared import redis_keys
from shared.coordination._scripts import clock_arg, load_lua, text, to_ms

_ADVERTISE_LUA = load_lua("media_advertise.lua")
_RESERVE_LUA = load_lua("media_reserve.lua")
_RENEW_LUA = load_lua("lease_renew.lua")
_FREE_SLOTS_LUA = load_lua("media_free_slots.lua")
_RECLAIM_LUA = load_lua("media_reclaim.lua")

# Worker ids become key segments: no ':' (it would alias another worker's keys), and never the
# live set's own name.
_WORKER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_RESERVED_IDS = frozenset({redis_keys.media_workers().rsplit(":", 1)[-1]})

ScriptArgs = list[int | str]


@dataclass(frozen=True)
class SlotReservation:
    """One reserved call slot: where to point the carrier's media stream, and the id to release."""

    worker_id: str
    stream_url: str
    reservation_id: str


def _checked_worker_id(worker_id: str) -> str:
    if not _WORKER_ID.fullmatch(worker_id) or worker_id in _RESERVED_IDS:
        raise ValueError(f"media worker id must match {_WORKER_ID.pattern}: {worker_id!r}")
    return worker_id


def _advertise_args(
    worker_id: str,
    stream_url: str,
    slots: int,
    heartbeat_ttl_s: float,
    draining: bool,
    now_ms: int | None,
) -> tuple[list[str], ScriptArgs]:
    keys = [redis_keys.media_workers(), redis_keys.media_worker(_checked_worker_id(worker_id))]
    heartbeat_ms = to_ms(heartbeat_ttl_s, "heartbeat_ttl_s")
    if slots < 0:
        raise ValueError(f"slots must not be negative, got {slots!r}")
    args: ScriptArgs = [
        clock_arg(now_ms), heartbeat_ms, worker_id, stream_url, slots, "1" if draining else "0"
    ]  # fmt: skip
    return keys, args


def _renew_args(reservation_ttl_s: float, now_ms: int | None, reservation_id: str) -> ScriptArgs:
    return [clock_arg(now_ms), to_ms(reservation_ttl_s, "reservation_ttl_s"), reservation_id]


def _worker_keys(worker_id: str) -> list[str]:
    checked = _checked_worker_id(worker_id)  # withdraw("live") must not delete the live set
    return [redis_keys.media_worker(checked), redis_keys.media_reservations(checked)]


def _affix_args(now_ms: int | None) -> ScriptArgs:
    return [clock_arg(now_ms), *redis_keys.media_worker_key_affixes()]


class MediaSlots:
    """Media capacity over the sync Redis client: reserve for dispatch, sweeps for reconcilers."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._advertise = client.register_script(_ADVERTISE_LUA)
        self._reserve = client.register_script(_RESERVE_LUA)
        self._renew = client.register_script(_RENEW_LUA)
        self._free_slots = client.register_script(_FREE_SLOTS_LUA)
        self._reclaim = client.register_script(_RECLAIM_LUA)

    def advertise(
        self,
        worker_id: str,
        *,
        stream_url: str,
        slots: int,
        heartbeat_ttl_s: float,
        draining: bool = False,
        now_ms: int | None = None,
    ) -> None:
        """Heartbeat: the worker is live for `heartbeat_ttl_s` with `slots` call capacity."""
        keys, args = _advertise_args(
            worker_id, stream_url, slots, heartbeat_ttl_s, draining, now_ms
        )
        self._advertise(keys=keys, args=args)

    def withdraw(self, worker_id: str) -> bool:
        """Remove the worker and its reservations now; True if it was advertised."""
        keys = _worker_keys(worker_id)
        with self._client.pipeline(transaction=True) as pipe:
            pipe.zrem(redis_keys.media_workers(), worker_id)
            pipe.delete(*keys)
            removed, _ = pipe.execute()
        return bool(removed)

    def reserve(
        self, *, reservation_ttl_s: float, now_ms: int | None = None
    ) -> SlotReservation | None:
        """Reserve a slot on the live, non-draining worker with the most free; None if none."""
        reservation_id = secrets.token_hex(12)
        args: ScriptArgs = [
            clock_arg(now_ms),
            to_ms(reservation_ttl_s, "reservation_ttl_s"),
            reservation_id,
            *redis_keys.media_worker_key_affixes(),
        ]
        raw: Any = self._reserve(keys=[redis_keys.media_workers()], args=args)
        if raw is None:
            return None
        worker_id, stream_url = raw
        return SlotReservation(text(worker_id), text(stream_url), reservation_id)

    def release(self, worker_id: str, reservation_id: str) -> bool:
        """Free a reserved slot; True only the first time (a duplicate frees nothing)."""
        key = redis_keys.media_reservations(worker_id)
        return bool(self._client.zrem(key, reservation_id))

    def renew(
        self,
        worker_id: str,
        reservation_id: str,
        *,
        reservation_ttl_s: float,
        now_ms: int | None = None,
    ) -> bool:
        """Extend a held reservation; False means it expired or its worker was declared dead."""
        keys = [redis_keys.media_reservations(worker_id)]
        args = _renew_args(reservation_ttl_s, now_ms, reservation_id)
        return int(self._renew(keys=keys, args=args)) == 1

    def free_slots(self, now_ms: int | None = None) -> int:
        """Free slots summed over live, non-draining workers (read-only)."""
        keys = [redis_keys.media_workers()]
        return int(self._free_slots(keys=keys, args=_affix_args(now_ms)))

    def reclaim_expired(self, now_ms: int | None = None) -> int:
        """Drop dead workers and expired reservations; returns reservations reclaimed."""
        keys = [redis_keys.media_workers()]
        return int(self._reclaim(keys=keys, args=_affix_args(now_ms)))


class AsyncMediaSlots:
    """The media worker's side over the asyncio Redis client: heartbeat, renew, release."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._advertise = client.register_script(_ADVERTISE_LUA)
        self._renew = client.register_script(_RENEW_LUA)

    async def advertise(
        self,
        worker_id: str,
        *,
        stream_url: str,
        slots: int,
        heartbeat_ttl_s: float,
        draining: bool = False,
        now_ms: int | None = None,
    ) -> None:
        """Heartbeat: the worker is live for `heartbeat_ttl_s` with `slots` call capacity."""
        keys, args = _advertise_args(
            worker_id, stream_url, slots, heartbeat_ttl_s, draining, now_ms
        )
        await self._advertise(keys=keys, args=args)

    async def withdraw(self, worker_id: str) -> bool:
        """Remove the worker and its reservations now; True if it was advertised."""
        keys = _worker_keys(worker_id)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.zrem(redis_keys.media_workers(), worker_id)
            pipe.delete(*keys)
            removed, _ = await pipe.execute()
        return bool(removed)

    async def release(self, worker_id: str, reservation_id: str) -> bool:
        """Free a reserved slot; True only the first time (a duplicate frees nothing)."""
        key = redis_keys.media_reservations(worker_id)
        return bool(await self._client.zrem(key, reservation_id))

    async def renew(
        self,
        worker_id: str,
        reservation_id: str,
        *,
        reservation_ttl_s: float,
        now_ms: int | None = None,
    ) -> bool:
        """Extend a held reservation; False means it expired or its worker was declared dead."""
        keys = [redis_keys.media_reservations(worker_id)]
        args = _renew_args(reservation_ttl_s, now_ms, reservation_id)
        return int(await self._renew(keys=keys, args=args)) == 1
