"""Channel-token lease semaphore against the real Redis: cap, expiry, renew, release."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import redis.asyncio

from shared import redis_keys
from shared.coordination import AsyncChannelLeases, ChannelLeases
from shared.settings import Settings

T0 = 1_000_000_000  # an explicit clock (ms)
TTL_S = 30


@pytest.fixture
async def async_redis(
    redis_client: redis.Redis, settings: Settings
) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


def test_cap_holds_under_concurrency(redis_client: redis.Redis) -> None:
    leases = ChannelLeases(redis_client)
    start = threading.Barrier(8)

    def hammer(_: int) -> list[str]:
        start.wait()
        tokens = (leases.try_acquire("n1", max_channels=5, lease_ttl_s=TTL_S) for _ in range(40))
        return [token for token in tokens if token is not None]

    with ThreadPoolExecutor(8) as pool:
        tokens = [token for batch in pool.map(hammer, range(8)) for token in batch]

    assert len(tokens) == len(set(tokens)) == 5
    assert leases.in_use("n1") == 5
    assert redis_client.zcard(redis_keys.channel_leases("n1")) == 5


def test_expired_leases_free_their_channels(redis_client: redis.Redis) -> None:
    leases = ChannelLeases(redis_client)
    held = [leases.try_acquire("n1", max_channels=2, lease_ttl_s=TTL_S, now_ms=T0) for _ in "ab"]
    assert None not in held
    assert leases.try_acquire("n1", max_channels=2, lease_ttl_s=TTL_S, now_ms=T0 + 1) is None

    assert leases.in_use("n1", now_ms=T0 + 29_999) == 2
    assert leases.in_use("n1", now_ms=T0 + 30_000) == 0
    # A lease past its expiry frees its channel even before any reconciler runs.
    assert leases.try_acquire("n1", max_channels=2, lease_ttl_s=TTL_S, now_ms=T0 + 30_000)
    assert redis_client.zcard(redis_keys.channel_leases("n1")) == 1


def test_reclaim_counts_only_expired_leases(redis_client: redis.Redis) -> None:
    leases = ChannelLeases(redis_client)
    leases.try_acquire("n1", max_channels=3, lease_ttl_s=10, now_ms=T0)
    leases.try_acquire("n1", max_channels=3, lease_ttl_s=10, now_ms=T0)
    leases.try_acquire("n1", max_channels=3, lease_ttl_s=60, now_ms=T0)

    assert leases.reclaim_expired("n1", now_ms=T0 + 10_000) == 2
    assert leases.reclaim_expired("n1", now_ms=T0 + 10_000) == 0
    assert redis_client.zcard(redis_keys.channel_leases("n1")) == 1


def test_double_release_frees_one_channel(redis_client: redis.Redis) -> None:
    leases = ChannelLeases(redis_client)
    first = leases.try_acquire("n1", max_channels=2, lease_ttl_s=TTL_S)
    assert first is not None
    assert leases.try_acquire("n1", max_channels=2, lease_ttl_s=TTL_S) is not None

    assert leases.release("n1", first) is True
    assert leases.release("n1", first) is False  # a duplicate webhook

    assert leases.try_acquire("n1", max_channels=2, lease_ttl_s=TTL_S) is not None
    assert leases.try_acquire("n1", max_channels=2, lease_ttl_s=TTL_S) is None


def test_renew_extends_a_held_lease(redis_client: redis.Redis) -> None:
    leases = ChannelLeases(redis_client)
    token = leases.try_acquire("n1", max_channels=1, lease_ttl_s=TTL_S, now_ms=T0)
    assert token is not None

    assert leases.renew("n1", token, lease_ttl_s=TTL_S, now_ms=T0 + 20_000) is True
    assert leases.in_use("n1", now_ms=T0 + 45_000) == 1
    assert leases.try_acquire("n1", max_channels=1, lease_ttl_s=TTL_S, now_ms=T0 + 45_000) is None


def test_renew_of_a_reclaimed_or_expired_lease_fails(redis_client: redis.Redis) -> None:
    leases = ChannelLeases(redis_client)
    reclaimed = leases.try_acquire("n1", max_channels=2, lease_ttl_s=TTL_S, now_ms=T0)
    lapsed = leases.try_acquire("n1", max_channels=2, lease_ttl_s=TTL_S, now_ms=T0)
    assert reclaimed is not None and lapsed is not None
    leases.reclaim_expired("n1", now_ms=T0 + 30_000)
    redis_client.zadd(redis_keys.channel_leases("n1"), {lapsed: T0 + 30_000})

    assert leases.renew("n1", reclaimed, lease_ttl_s=TTL_S, now_ms=T0 + 30_001) is False
    # Expired but not yet reclaimed: not revived, and dropped so nobody counts it again.
    assert leases.renew("n1", lapsed, lease_ttl_s=TTL_S, now_ms=T0 + 30_001) is False
    assert redis_client.exists(redis_keys.channel_leases("n1")) == 0


def test_lease_key_expires_with_its_longest_lease(redis_client: redis.Redis) -> None:
    leases = ChannelLeases(redis_client)
    token = leases.try_acquire("n1", max_channels=3, lease_ttl_s=20)
    leases.try_acquire("n1", max_channels=3, lease_ttl_s=5)
    key = redis_keys.channel_leases("n1")
    assert 19_000 < redis_client.pttl(key) <= 20_000

    assert token is not None and leases.renew("n1", token, lease_ttl_s=40)
    assert 39_000 < redis_client.pttl(key) <= 40_000


def test_lease_context_releases_on_failure(redis_client: redis.Redis) -> None:
    leases = ChannelLeases(redis_client)
    with pytest.raises(RuntimeError), leases.lease("n1", max_channels=1, lease_ttl_s=TTL_S) as t:
        assert t is not None and leases.in_use("n1") == 1
        raise RuntimeError("provider refused the dial")
    assert leases.in_use("n1") == 0

    with leases.lease("n1", max_channels=1, lease_ttl_s=TTL_S) as outer:
        with leases.lease("n1", max_channels=1, lease_ttl_s=TTL_S) as inner:
            assert outer is not None and inner is None
    assert leases.in_use("n1") == 0


async def test_async_renew_and_release(
    redis_client: redis.Redis, async_redis: redis.asyncio.Redis
) -> None:
    sync_leases, async_leases = ChannelLeases(redis_client), AsyncChannelLeases(async_redis)
    token = sync_leases.try_acquire("n1", max_channels=1, lease_ttl_s=TTL_S, now_ms=T0)
    assert token is not None

    assert await async_leases.renew("n1", token, lease_ttl_s=TTL_S, now_ms=T0 + 25_000)
    assert sync_leases.in_use("n1", now_ms=T0 + 50_000) == 1
    assert await async_leases.release("n1", token) is True
    assert await async_leases.release("n1", token) is False
    assert not await async_leases.renew("n1", token, lease_ttl_s=TTL_S)
    assert sync_leases.in_use("n1") == 0


async def test_async_lease_context_releases(async_redis: redis.asyncio.Redis) -> None:
    leases = AsyncChannelLeases(async_redis)
    async with leases.lease("n1", max_channels=1, lease_ttl_s=TTL_S) as token:
        assert token is not None
        assert await leases.try_acquire("n1", max_channels=1, lease_ttl_s=TTL_S) is None
    assert await leases.try_acquire("n1", max_channels=1, lease_ttl_s=TTL_S) is not None
