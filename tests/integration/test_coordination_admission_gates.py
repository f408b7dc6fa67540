"""The dispatch's capacity gates as one atomic Redis step, against the real Redis: what each
refusal leaves (nothing), what an admission holds, and the gates' order."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import redis

from shared import redis_keys
from shared.coordination import (
    AdmissionGates,
    ChannelLeases,
    GateNumber,
    GateRefused,
    GatesPassed,
    MediaSlots,
    RateLimiter,
)

T0 = 1_000_000_000  # an explicit clock (ms)
MERCHANT = "m-1"
PHONE = "+919812345678"
WINDOW_S = 3600
FIRST, SECOND = GateNumber("n-first", 1), GateNumber("n-second", 2)


def _take(
    gates: AdmissionGates,
    member: str,
    *,
    numbers: tuple[GateNumber, ...] = (FIRST, SECOND),
    limit: int = 3,
    now_ms: int = T0,
) -> GatesPassed | GateRefused:
    return gates.take(
        merchant_id=MERCHANT,
        e164=PHONE,
        rate_member=member,
        limit=limit,
        window_s=WINDOW_S,
        numbers=numbers,
        lease_ttl_s=90,
        reservation_ttl_s=90,
        now_ms=now_ms,
    )


def _worker(redis_client: redis.Redis, slots: int = 10) -> MediaSlots:
    media = MediaSlots(redis_client)
    media.advertise(
        "w-1", stream_url="wss://w1/stream", slots=slots, heartbeat_ttl_s=600, now_ms=T0
    )
    return media


def _window(redis_client: redis.Redis) -> list[bytes]:
    return list(redis_client.zrange(redis_keys.rate_window(MERCHANT, PHONE), 0, -1))


def test_admission_holds_a_channel_a_slot_and_a_window_entry(redis_client: redis.Redis) -> None:
    media = _worker(redis_client)
    taken = _take(AdmissionGates(redis_client), "attempt-1")
    assert isinstance(taken, GatesPassed)
    assert (taken.number_index, taken.worker_id, taken.stream_url) == (0, "w-1", "wss://w1/stream")
    leases = redis_client.zrange(redis_keys.channel_leases(FIRST.number_id), 0, -1)
    assert leases == [taken.channel_token_id.encode()]
    assert media.free_slots(now_ms=T0) == 9
    assert _window(redis_client) == [b"attempt-1"]
    # What it holds is released by the gates' own release calls.
    assert ChannelLeases(redis_client).release(FIRST.number_id, taken.channel_token_id)
    assert media.release(taken.worker_id, taken.reservation_id)


def test_a_busy_first_number_falls_through_to_the_next(redis_client: redis.Redis) -> None:
    _worker(redis_client)
    gates = AdmissionGates(redis_client)
    first = _take(gates, "a-1")
    second = _take(gates, "a-2")
    assert isinstance(first, GatesPassed) and isinstance(second, GatesPassed)
    assert (first.number_index, second.number_index) == (0, 1)


def test_rate_limited_takes_nothing_and_waits_for_the_oldest_entry(
    redis_client: redis.Redis,
) -> None:
    media = _worker(redis_client)
    limiter = RateLimiter(redis_client)
    for i, at in enumerate((T0 - 3_000_000, T0 - 2_000_000, T0 - 1_000_000)):
        limiter.record(MERCHANT, PHONE, member=f"old-{i}", limit=3, window_s=WINDOW_S, now_ms=at)
    refused = _take(AdmissionGates(redis_client), "attempt-4")
    # The oldest entry (T0 - 3,000 s) leaves the 3,600 s window 600 s from now.
    assert refused == GateRefused("rate_limited", 600_000)
    assert redis_client.exists(redis_keys.channel_leases(FIRST.number_id)) == 0
    assert media.free_slots(now_ms=T0) == 10
    assert b"attempt-4" not in _window(redis_client)


def test_channel_wait_never_writes_the_rate_window(redis_client: redis.Redis) -> None:
    media = _worker(redis_client)
    channels = ChannelLeases(redis_client)
    assert channels.try_acquire(FIRST.number_id, max_channels=1, lease_ttl_s=90, now_ms=T0)
    refused = _take(AdmissionGates(redis_client), "attempt-1", numbers=(FIRST,))
    assert refused == GateRefused("channels_busy")
    assert _window(redis_client) == []
    assert media.free_slots(now_ms=T0) == 10


def test_media_wait_gives_the_channel_back_and_writes_no_window(
    redis_client: redis.Redis,
) -> None:
    refused = _take(AdmissionGates(redis_client), "attempt-1")  # no media worker at all
    assert refused == GateRefused("media_busy")
    assert ChannelLeases(redis_client).in_use(FIRST.number_id, now_ms=T0) == 0
    assert _window(redis_client) == []


def test_concurrent_dispatches_never_exceed_any_cap(redis_client: redis.Redis) -> None:
    """24 dispatches at once for one phone: 3 fit the rate limit, though 6 channels and 10
    media slots would allow more; nothing is held by the 21 refused."""
    numbers = (FIRST, GateNumber("n-second", 5))
    media = _worker(redis_client, slots=10)
    start = threading.Barrier(8)

    def run(i: int) -> GatesPassed | GateRefused:
        if i < 8:
            start.wait()
        return _take(AdmissionGates(redis_client), f"attempt-{i}", numbers=numbers)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, range(24)))
    passed = [r for r in results if isinstance(r, GatesPassed)]
    assert len(passed) == 3
    assert {r.reason for r in results if isinstance(r, GateRefused)} == {"rate_limited"}
    channels = ChannelLeases(redis_client)
    in_use = channels.in_use(FIRST.number_id, now_ms=T0) + channels.in_use(
        SECOND.number_id, now_ms=T0
    )
    assert in_use == 3
    assert media.free_slots(now_ms=T0) == 7
    assert len(_window(redis_client)) == 3
