"""Fleet-wide TTS provider health: degraded marks with a cooldown, and the half-open probe.

One hash per provider (`shared.redis_keys.provider_health`), written only by Lua so that every
change is one atomic step: `mark_degraded` sets it (with a TTL: cooldown end plus
`record_ttl_s`; no record means healthy), `start_state` tells a new call which voice to start
on and hands exactly one caller the probe once the cooldown is over, `restore` deletes it when
that probe spoke well. A failed probe is just another `mark_degraded`, which extends the
cooldown. The media worker's event loop uses the asyncio client; nothing here blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis.asyncio

from shared import redis_keys
from shared.coordination._scripts import clock_arg, load_lua, text, to_ms

_DEGRADE_LUA = load_lua("tts_health_degrade.lua")
_START_LUA = load_lua("tts_health_start.lua")
_RESTORE_LUA = load_lua("tts_health_restore.lua")

# Provider names become key segments (and alert subjects): no ':' and nothing exotic.
_PROVIDER = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class StartState(StrEnum):
    """What a new call should do with a provider (`AsyncTtsHealth.start_state`)."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    PROBE = "probe"


@dataclass(frozen=True)
class DegradeResult:
    """`flipped`: this report turned a healthy provider degraded (the one to alert about)."""

    flipped: bool
    degraded_until_ms: int


@dataclass(frozen=True)
class ProviderHealth:
    """One provider's record as stored (None fields: not set)."""

    provider: str
    state: str
    degraded_until_ms: int | None
    reason: str | None
    reported_by: str | None
    flips: int
    probe_owner: str | None


def _checked(provider: str) -> str:
    if not _PROVIDER.fullmatch(provider):
        raise ValueError(f"TTS provider name must match {_PROVIDER.pattern}: {provider!r}")
    return provider


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


class AsyncTtsHealth:
    """The health records over the asyncio client (the media worker's side)."""

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._degrade = client.register_script(_DEGRADE_LUA)
        self._start = client.register_script(_START_LUA)
        self._restore = client.register_script(_RESTORE_LUA)

    async def mark_degraded(
        self,
        provider: str,
        *,
        cooldown_s: float,
        record_ttl_s: float,
        reason: str,
        reporter: str,
        now_ms: int | None = None,
    ) -> DegradeResult:
        """Mark `provider` degraded until now + `cooldown_s` (or later, if it already was)."""
        keys = [redis_keys.provider_health(_checked(provider))]
        args = [
            clock_arg(now_ms),
            to_ms(cooldown_s, "cooldown_s"),
            to_ms(record_ttl_s, "record_ttl_s"),
            reason,
            reporter,
        ]
        flipped, until_ms = await self._degrade(keys=keys, args=args)
        return DegradeResult(flipped=int(flipped) == 1, degraded_until_ms=int(until_ms))

    async def start_state(
        self, provider: str, *, probe_lease_s: float, owner: str, now_ms: int | None = None
    ) -> StartState:
        """HEALTHY, DEGRADED (start on the fallback) or PROBE (this caller tries the provider;
        the claim lasts `probe_lease_s`, after which another caller may probe)."""
        keys = [redis_keys.provider_health(_checked(provider))]
        args = [clock_arg(now_ms), to_ms(probe_lease_s, "probe_lease_s"), owner]
        return StartState(text(await self._start(keys=keys, args=args)))

    async def restore(self, provider: str, *, owner: str) -> bool:
        """The probe `owner` holds succeeded: delete the record. False if it no longer holds
        the claim (someone reported a failure since), which leaves the record as it is."""
        keys = [redis_keys.provider_health(_checked(provider))]
        return int(await self._restore(keys=keys, args=[owner])) == 1

    async def read(self, provider: str) -> ProviderHealth | None:
        """The stored record, or None when the provider is healthy (read-only)."""
        raw = await self._client.hgetall(redis_keys.provider_health(_checked(provider)))
        if not raw:
            return None
        fields = {text(k): text(v) for k, v in raw.items()}
        return ProviderHealth(
            provider=provider,
            state=fields.get("state", ""),
            degraded_until_ms=_int_or_none(fields.get("degraded_until_ms")),
            reason=fields.get("reason"),
            reported_by=fields.get("reported_by"),
            flips=int(fields.get("flips", 0)),
            probe_owner=fields.get("probe_owner"),
        )

    async def allow_alert(self, kind: str, subject: str, *, every_s: float) -> bool:
        """True for the first alert of (`kind`, `subject`) per `every_s`, fleet-wide: the same
        marker `AlertThrottle` sets, over the asyncio client."""
        key = redis_keys.alert_throttle(kind, subject)
        return bool(await self._client.set(key, b"1", nx=True, px=to_ms(every_s, "every_s")))
