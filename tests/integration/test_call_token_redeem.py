"""Call tokens are spent once, fleet-wide, through Redis (sync and asyncio clients)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio

from shared import redis_keys
from shared.call_tokens import (
    AsyncCallTokenRedeemer,
    CallTokenClaims,
    CallTokenRedeemer,
    TokenReused,
)
from shared.settings import Settings


def claims(token_id: str = "tid-1") -> CallTokenClaims:
    return CallTokenClaims(
        token_id=token_id, attempt_id="att-1", lead_id="lead-1", issued_at_s=1_700_000_000
    )


def test_a_token_is_redeemed_once(redis_client: redis.Redis) -> None:
    redeemer = CallTokenRedeemer(redis_client, used_marker_ttl_s=120)
    redeemer.redeem(claims())
    with pytest.raises(TokenReused):
        redeemer.redeem(claims())
    redeemer.redeem(claims("tid-2"))


def test_the_used_marker_expires(redis_client: redis.Redis) -> None:
    CallTokenRedeemer(redis_client, used_marker_ttl_s=120).redeem(claims())
    ttl = redis_client.ttl(redis_keys.call_token_used("tid-1"))
    assert isinstance(ttl, int) and 0 < ttl <= 120


def test_concurrent_redeemers_let_exactly_one_through(redis_client: redis.Redis) -> None:
    redeemer = CallTokenRedeemer(redis_client)
    outcomes: list[str] = []
    lock = threading.Lock()

    def redeem() -> None:
        try:
            redeemer.redeem(claims())
            result = "ok"
        except TokenReused:
            result = "reused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=redeem) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok"] + ["reused"] * 15


@pytest.fixture
async def async_redis(
    settings: Settings, redis_client: redis.Redis
) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


async def test_the_async_redeemer_shares_the_same_marker(
    redis_client: redis.Redis, async_redis: redis.asyncio.Redis
) -> None:
    await AsyncCallTokenRedeemer(async_redis).redeem(claims())
    with pytest.raises(TokenReused):
        CallTokenRedeemer(redis_client).redeem(claims())
    with pytest.raises(TokenReused):
        await AsyncCallTokenRedeemer(async_redis).redeem(claims())
