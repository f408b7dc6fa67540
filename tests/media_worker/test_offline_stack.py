"""The worker-wide offline provider choices (`python -m media_worker --providers ...`), and the
Redis and PostgreSQL connections the worker opens before its first call."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
import structlog.testing
from sqlalchemy import Engine

from media_worker.__main__ import main, warm_database_pool, warm_pools, warm_redis_pool
from media_worker.pipeline import ProviderOverrides
from media_worker.providers.flaky import FlakyKnobs
from shared.db.session import make_async_engine
from shared.settings import Settings


def test_fast_offline_stack_hears_the_side_channel_and_falls_back_to_espeak() -> None:
    fast = ProviderOverrides.offline_stack()
    assert (fast.stt, fast.llm, fast.tts, fast.tts_voice) == ("sim", "scripted", "tone", "tone")
    assert (fast.tts_fallback, fast.tts_fallback_voice) == ("espeak", "en-us+f2")
    assert fast.tts_flaky is None


def test_realistic_stack_transcribes_audio_and_speaks_with_espeak() -> None:
    real = ProviderOverrides.offline_stack(realistic=True)
    assert (real.stt, real.tts, real.tts_voice) == ("moonshine", "espeak", "en-us+f2")
    assert (real.tts_fallback, real.tts_fallback_voice) == ("tone", "tone")


def test_a_failing_primary_is_the_same_voice_behind_a_flaky_wrapper() -> None:
    fast = ProviderOverrides.offline_stack(tts_fail_probability=0.25)
    assert (fast.tts, fast.tts_voice) == ("flaky", "tone")
    # Every call draws its own failures: a shared seed would fail the same sentences of all.
    assert fast.tts_flaky == FlakyKnobs(fail_probability=0.25, seed=None)
    real = ProviderOverrides.offline_stack(realistic=True, tts_fail_probability=0.25)
    assert (real.tts, real.tts_voice) == ("flaky", "espeak:en-us+f2")


def test_the_cli_refuses_a_probability_outside_zero_to_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--providers", "offline", "--tts-fail-probability", "1.5"])
    assert exited.value.code == 2
    assert "--tts-fail-probability must be within 0..1" in capsys.readouterr().err


async def test_the_worker_opens_its_redis_connections_before_the_first_call(
    settings: Settings, aredis: aioredis.Redis
) -> None:
    name = f"warm-{uuid.uuid4().hex[:12]}"
    client = aioredis.Redis.from_url(settings.redis_url, client_name=name)
    try:
        await warm_redis_pool(client, connections=4)
        connected = [c for c in await aredis.client_list() if c["name"] == name]
    finally:
        await client.aclose()
    assert len(connected) == 4


async def test_the_worker_opens_its_database_connections_before_the_first_call(
    settings: Settings, engine: Engine
) -> None:
    # `engine` (unused here) makes sure the test database exists.
    reads = make_async_engine(settings, pool_size=3, pre_ping=False)
    try:
        await warm_database_pool(reads, connections=3)
        pool = reads.sync_engine.pool
        idle, opened = pool.checkedin(), pool.checkedout()  # type: ignore[attr-defined]
    finally:
        await reads.dispose()
    assert (idle, opened) == (3, 0)


async def test_a_warm_up_against_services_that_are_down_is_logged_and_the_worker_goes_on(
    settings: Settings,
) -> None:
    closed_port = "127.0.0.1:9"  # discard: nothing listens there
    client = aioredis.Redis.from_url(f"redis://{closed_port}/0")
    down = Settings(
        DATABASE_URL=f"postgresql://postgres@{closed_port}/none", REDIS_URL=settings.redis_url
    )
    reads = make_async_engine(down, pool_size=2, pre_ping=False)
    try:
        with structlog.testing.capture_logs() as logs:
            await warm_pools(client, reads, slots=4, read_pool_size=2)
    finally:
        await client.aclose()
        await reads.dispose()
    assert [e["event"] for e in logs] == ["connection_warm_up_failed"]
