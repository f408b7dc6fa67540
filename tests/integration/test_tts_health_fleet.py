"""The fleet-wide TTS health record on real Redis: atomic degraded marks with a TTL, concurrent
flips, the single half-open probe claim, and restore by the probe's owner only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared import redis_keys
from shared.coordination.tts_health import AsyncTtsHealth, StartState
from shared.settings import Settings

NOW_MS = 1_000_000


@pytest.fixture
async def fleet(settings: Settings, redis_client: Any) -> AsyncIterator[AsyncTtsHealth]:
    client = aioredis.Redis.from_url(settings.redis_url)
    yield AsyncTtsHealth(client)
    await client.aclose()


async def degrade(fleet: AsyncTtsHealth, *, now_ms: int = NOW_MS, reporter: str = "mw-1") -> Any:
    return await fleet.mark_degraded(
        "cartesia",
        cooldown_s=60,
        record_ttl_s=600,
        reason="error",
        reporter=reporter,
        now_ms=now_ms,
    )


async def test_a_degraded_mark_is_one_hash_with_a_ttl(
    fleet: AsyncTtsHealth, redis_client: Any
) -> None:
    result = await degrade(fleet)
    assert result.flipped and result.degraded_until_ms == NOW_MS + 60_000
    health = await fleet.read("cartesia")
    assert health is not None
    assert (health.state, health.reason, health.flips) == ("degraded", "error", 1)
    ttl_ms = redis_client.pttl(redis_keys.provider_health("cartesia"))
    assert 600_000 < ttl_ms <= 660_000  # cooldown + record TTL
    assert await fleet.read("elevenlabs") is None


async def test_two_workers_flipping_at_once_leave_one_consistent_record(
    fleet: AsyncTtsHealth,
) -> None:
    results = await asyncio.gather(
        *(degrade(fleet, now_ms=NOW_MS + i, reporter=f"mw-{i}") for i in range(8))
    )
    assert sum(r.flipped for r in results) == 1  # exactly one alerts
    health = await fleet.read("cartesia")
    assert health is not None and health.flips == 1 and health.state == "degraded"
    # The latest cooldown end wins, whatever order the scripts ran in.
    assert health.degraded_until_ms == NOW_MS + 7 + 60_000


async def test_new_calls_start_on_the_fallback_during_the_cooldown(fleet: AsyncTtsHealth) -> None:
    assert await fleet.start_state("cartesia", probe_lease_s=30, owner="a") is StartState.HEALTHY
    await degrade(fleet)
    during = NOW_MS + 59_999
    state = await fleet.start_state("cartesia", probe_lease_s=30, owner="a", now_ms=during)
    assert state is StartState.DEGRADED


async def test_exactly_one_call_claims_the_probe_after_the_cooldown(
    fleet: AsyncTtsHealth,
) -> None:
    await degrade(fleet)
    after = NOW_MS + 60_000
    states = await asyncio.gather(
        *(
            fleet.start_state("cartesia", probe_lease_s=30, owner=f"call-{i}", now_ms=after)
            for i in range(8)
        )
    )
    assert states.count(StartState.PROBE) == 1
    assert states.count(StartState.DEGRADED) == 7
    # A claim whose lease ran out (the probing call vanished) goes to the next caller.
    later = after + 30_000
    state = await fleet.start_state("cartesia", probe_lease_s=30, owner="late", now_ms=later)
    assert state is StartState.PROBE


async def test_only_the_probe_owner_restores_and_a_failure_extends_the_cooldown(
    fleet: AsyncTtsHealth,
) -> None:
    await degrade(fleet)
    after = NOW_MS + 60_000
    await fleet.start_state("cartesia", probe_lease_s=30, owner="prober", now_ms=after)
    assert not await fleet.restore("cartesia", owner="someone-else")

    failed = await degrade(fleet, now_ms=after + 10)  # the probe failed
    assert not failed.flipped and failed.degraded_until_ms == after + 10 + 60_000
    assert not await fleet.restore("cartesia", owner="prober")  # its claim is gone
    health = await fleet.read("cartesia")
    assert health is not None and health.probe_owner is None and health.flips == 1

    retry_at = after + 10 + 60_000
    state = await fleet.start_state("cartesia", probe_lease_s=30, owner="p2", now_ms=retry_at)
    assert state is StartState.PROBE
    assert await fleet.restore("cartesia", owner="p2")
    assert await fleet.read("cartesia") is None
    assert await fleet.start_state("cartesia", probe_lease_s=30, owner="x") is StartState.HEALTHY


async def test_alerts_are_throttled_per_provider(fleet: AsyncTtsHealth) -> None:
    assert await fleet.allow_alert("tts_provider_degraded", "cartesia", every_s=60)
    assert not await fleet.allow_alert("tts_provider_degraded", "cartesia", every_s=60)
    assert await fleet.allow_alert("tts_provider_degraded", "elevenlabs", every_s=60)


async def test_provider_names_that_would_alias_keys_are_refused(fleet: AsyncTtsHealth) -> None:
    with pytest.raises(ValueError):
        await fleet.read("cartesia:evil")
