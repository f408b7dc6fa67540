"""Per-recipient sliding-window limiter against the real Redis: peek, record, forget."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from shared import redis_keys
from shared.coordination import RateDecision, RateLimiter

PHONE = "+14155550123"
T0 = 1_000_000_000  # an explicit clock (ms): the scripts never read Redis TIME when given now_ms


def _snapshot(client: redis.Redis) -> dict[bytes | str, object]:
    return {key: client.zrange(key, 0, -1, withscores=True) for key in client.keys("*")}


def _names(keys: list[bytes | str]) -> list[str]:
    return [key.decode() if isinstance(key, bytes) else key for key in keys]


def test_peek_writes_nothing_not_even_a_trim(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    key = redis_keys.rate_window("m1", PHONE)
    # Two entries that will have left the window by the time of the peek, one still inside.
    for i, at in enumerate((T0, T0 + 1_000, T0 + 50_000)):
        limiter.record("m1", PHONE, member=f"a{i}", limit=10, window_s=60, now_ms=at)
    before, ttl_before = _snapshot(redis_client), redis_client.pttl(key)

    decision = limiter.peek("m1", PHONE, limit=1, window_s=60, now_ms=T0 + 70_000)
    limiter.peek("m1", "+14155550199", limit=1, window_s=60, now_ms=T0 + 70_000)

    assert decision == RateDecision(allowed=False, retry_after_ms=40_000, count=1)
    assert _snapshot(redis_client) == before
    assert before[key.encode()] == [(b"a0", T0), (b"a1", T0 + 1_000), (b"a2", T0 + 50_000)]
    assert 0 < redis_client.pttl(key) <= ttl_before  # no expiry was set again


def test_retry_after_is_until_the_oldest_entry_leaves_not_a_whole_window(
    redis_client: redis.Redis,
) -> None:
    limiter = RateLimiter(redis_client)
    opts = {"limit": 2, "window_s": 10}
    assert limiter.record("m1", PHONE, member="a1", now_ms=T0, **opts).allowed
    assert limiter.record("m1", PHONE, member="a2", now_ms=T0 + 3_000, **opts).allowed

    assert limiter.peek("m1", PHONE, now_ms=T0 + 5_000, **opts) == RateDecision(False, 5_000, 2)
    assert limiter.peek("m1", PHONE, now_ms=T0 + 9_999, **opts) == RateDecision(False, 1, 2)
    assert limiter.peek("m1", PHONE, now_ms=T0 + 10_000, **opts) == RateDecision(True, 0, 1)

    refused = limiter.record("m1", PHONE, member="a3", now_ms=T0 + 5_000, **opts)
    assert refused == RateDecision(False, 5_000, 2)
    admitted = limiter.record("m1", PHONE, member="a3", now_ms=T0 + 10_000, **opts)
    assert admitted == RateDecision(True, 0, 2)
    # Now a2 (T0+3s) is the oldest: the next slot opens at T0+13s.
    assert limiter.peek("m1", PHONE, now_ms=T0 + 10_000, **opts).retry_after_ms == 3_000


def test_retry_after_over_a_lowered_limit_waits_for_enough_entries_to_leave(
    redis_client: redis.Redis,
) -> None:
    limiter = RateLimiter(redis_client)
    for i in range(3):
        limiter.record("m1", PHONE, member=f"a{i}", limit=5, window_s=10, now_ms=T0 + i * 1_000)
    # Limit lowered to 2 with 3 inside: two must leave, the second leaves at T0+1s+10s.
    decision = limiter.peek("m1", PHONE, limit=2, window_s=10, now_ms=T0 + 5_000)
    assert decision == RateDecision(False, 6_000, 3)


def test_record_enforces_the_limit_under_concurrency(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    start = threading.Barrier(8)

    def hammer(worker: int) -> int:
        start.wait()
        return sum(
            limiter.record("m1", PHONE, member=f"w{worker}-{i}", limit=3, window_s=60).allowed
            for i in range(50)
        )

    with ThreadPoolExecutor(8) as pool:
        admitted = sum(pool.map(hammer, range(8)))

    assert admitted == 3
    assert redis_client.zcard(redis_keys.rate_window("m1", PHONE)) == 3


def test_record_is_idempotent_per_member(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    first = limiter.record("m1", PHONE, member="attempt-1", limit=1, window_s=60, now_ms=T0)
    again = limiter.record("m1", PHONE, member="attempt-1", limit=1, window_s=60, now_ms=T0 + 5)

    assert first == RateDecision(True, 0, 1)
    assert again == RateDecision(True, 0, 1)
    assert redis_client.zscore(redis_keys.rate_window("m1", PHONE), "attempt-1") == T0
    other = limiter.record("m1", PHONE, member="attempt-2", limit=1, window_s=60, now_ms=T0 + 10)
    assert other == RateDecision(False, 59_990, 1)


def test_forget_removes_one_entry_once(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    limiter.record("m1", PHONE, member="attempt-1", limit=1, window_s=60)

    assert limiter.forget("m1", PHONE, "attempt-1") is True
    assert limiter.forget("m1", PHONE, "attempt-1") is False
    assert limiter.record("m1", PHONE, member="attempt-2", limit=1, window_s=60).allowed


def test_phones_and_merchants_are_independent(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    assert limiter.record("m1", PHONE, member="a", limit=1, window_s=60).allowed

    assert not limiter.peek("m1", PHONE, limit=1, window_s=60).allowed
    assert limiter.peek("m1", "+14155550124", limit=1, window_s=60).allowed
    assert limiter.peek("m2", PHONE, limit=1, window_s=60).allowed
    assert limiter.record("m1", "+14155550124", member="a", limit=1, window_s=60).allowed
    assert limiter.record("m2", PHONE, member="a", limit=1, window_s=60).allowed


def test_window_key_holds_no_phone_digits_and_expires_with_its_window(
    redis_client: redis.Redis,
) -> None:
    limiter = RateLimiter(redis_client)
    limiter.record("m1", PHONE, member="a", limit=1, window_s=30)

    keys = _names(redis_client.keys("*"))
    assert keys == [redis_keys.rate_window("m1", PHONE)]
    assert all("4155550123" not in key and "5550123" not in key for key in keys)
    assert 29_000 < redis_client.pttl(keys[0]) <= 30_000


def test_server_clock_is_used_without_now_ms(redis_client: redis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    limiter.record("m1", PHONE, member="a", limit=1, window_s=60)
    seconds, micros = redis_client.time()
    score = redis_client.zscore(redis_keys.rate_window("m1", PHONE), "a")

    assert score is not None
    assert 0 <= seconds * 1000 + micros // 1000 - score < 5_000


@pytest.mark.parametrize(("limit", "window_s"), [(0, 60), (3, 0), (3, 0.0001)])
def test_rejects_meaningless_limits(redis_client: redis.Redis, limit: int, window_s: float) -> None:
    with pytest.raises(ValueError):
        RateLimiter(redis_client).peek("m1", PHONE, limit=limit, window_s=window_s)
