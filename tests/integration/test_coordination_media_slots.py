"""Media-worker capacity against the real Redis: advertise, reserve, renew, release, reclaim."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import redis.asyncio

from shared import redis_keys
from shared.coordination import AsyncMediaSlots, MediaSlots, SlotReservation
from shared.settings import Settings

T0 = 1_000_000_000  # an explicit clock (ms)
HEARTBEAT_S = 60
RESERVE_S = 10


@pytest.fixture
async def async_redis(
    redis_client: redis.Redis, settings: Settings
) -> AsyncIterator[redis.asyncio.Redis]:
    client = redis.asyncio.Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


def _advertise(
    slots: MediaSlots,
    worker_id: str,
    n: int,
    *,
    heartbeat_ttl_s: float = HEARTBEAT_S,
    draining: bool = False,
    now_ms: int = T0,
) -> None:
    slots.advertise(
        worker_id,
        stream_url=f"wss://{worker_id}/stream",
        slots=n,
        heartbeat_ttl_s=heartbeat_ttl_s,
        draining=draining,
        now_ms=now_ms,
    )


def _reserve(slots: MediaSlots, at_ms: int = T0) -> SlotReservation | None:
    return slots.reserve(reservation_ttl_s=RESERVE_S, now_ms=at_ms)


def test_reserve_picks_the_worker_with_the_most_free_slots(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    _advertise(slots, "w1", 3)
    _advertise(slots, "w2", 5)

    first, second = _reserve(slots), _reserve(slots)
    assert first is not None and second is not None
    assert (first.worker_id, first.stream_url) == ("w2", "wss://w2/stream")
    assert second.worker_id == "w2"  # 4 free against 3
    _reserve(slots)
    _reserve(slots)
    # Whatever the tie-break, four reservations over 3 + 5 slots leave both workers 2 free.
    assert redis_client.zcard(redis_keys.media_reservations("w1")) == 1
    assert redis_client.zcard(redis_keys.media_reservations("w2")) == 3
    assert slots.free_slots(now_ms=T0) == 4


def test_dead_worker_disappears_with_its_capacity(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    _advertise(slots, "w1", 5, heartbeat_ttl_s=5)
    assert _reserve(slots) is not None

    assert slots.free_slots(now_ms=T0 + 4_999) == 4
    assert slots.free_slots(now_ms=T0 + 5_000) == 0
    assert _reserve(slots, T0 + 5_000) is None
    assert redis_client.keys("*") == []  # live entry, hash and reservations all dropped


def test_heartbeat_keeps_a_worker_alive(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    _advertise(slots, "w1", 2, heartbeat_ttl_s=5)
    _advertise(slots, "w1", 2, heartbeat_ttl_s=5, now_ms=T0 + 4_000)

    assert _reserve(slots, T0 + 8_000) is not None
    # The worker's hash lives as long as one heartbeat, so a dead worker leaves nothing behind.
    assert 4_000 < redis_client.pttl(redis_keys.media_worker("w1")) <= 5_000


def test_real_heartbeat_expiry_without_now_ms(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    slots.advertise("w1", stream_url="wss://w1", slots=2, heartbeat_ttl_s=0.2)
    assert slots.free_slots() == 2
    time.sleep(0.3)

    assert slots.free_slots() == 0
    assert slots.reserve(reservation_ttl_s=RESERVE_S) is None


def test_draining_worker_is_skipped(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    _advertise(slots, "w1", 10, draining=True)
    _advertise(slots, "w2", 1)

    chosen = _reserve(slots)
    assert chosen is not None and chosen.worker_id == "w2"
    assert _reserve(slots) is None
    assert slots.free_slots(now_ms=T0) == 0


def test_reservation_expiry_frees_its_slot(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    _advertise(slots, "w1", 1)
    assert _reserve(slots) is not None

    assert _reserve(slots, T0 + 9_999) is None
    assert slots.free_slots(now_ms=T0 + 10_000) == 1
    assert _reserve(slots, T0 + 10_000) is not None


def test_release_is_idempotent(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    _advertise(slots, "w1", 2)
    held = [_reserve(slots), _reserve(slots)]
    first = held[0]
    assert first is not None and None not in held

    assert slots.release(first.worker_id, first.reservation_id) is True
    assert slots.release(first.worker_id, first.reservation_id) is False

    assert _reserve(slots) is not None
    assert _reserve(slots) is None


def test_renew_keeps_a_reservation_and_fails_once_it_is_gone(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    _advertise(slots, "w1", 1)
    held = _reserve(slots)
    assert held is not None

    assert slots.renew("w1", held.reservation_id, reservation_ttl_s=RESERVE_S, now_ms=T0 + 8_000)
    assert _reserve(slots, T0 + 15_000) is None
    assert slots.reclaim_expired(now_ms=T0 + 18_000) == 1
    gone = slots.renew("w1", held.reservation_id, reservation_ttl_s=RESERVE_S, now_ms=T0 + 18_001)
    assert gone is False


def test_renew_does_not_revive_an_expired_reservation(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    _advertise(slots, "w1", 1)
    held = _reserve(slots)
    assert held is not None

    # Expired but not yet reclaimed: its slot may already count as free, so it stays lost.
    late = slots.renew("w1", held.reservation_id, reservation_ttl_s=RESERVE_S, now_ms=T0 + 10_000)
    assert late is False
    assert redis_client.exists(redis_keys.media_reservations("w1")) == 0
    assert _reserve(slots, T0 + 10_001) is not None


def test_reclaim_drops_dead_workers_and_expired_reservations(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    _advertise(slots, "dying", 2, heartbeat_ttl_s=5)
    _advertise(slots, "alive", 2)
    for _ in range(4):
        _reserve(slots)
    assert slots.renew("alive", _reserve_id(redis_client, "alive"), reservation_ttl_s=30, now_ms=T0)

    # At T0+12s: "dying" is dead (2 reservations), one of alive's two reservations expired.
    assert slots.reclaim_expired(now_ms=T0 + 12_000) == 3
    assert redis_client.zrange(redis_keys.media_workers(), 0, -1) == [b"alive"]
    assert slots.free_slots(now_ms=T0 + 12_000) == 1


def _reserve_id(client: redis.Redis, worker_id: str) -> str:
    (member,) = client.zrange(redis_keys.media_reservations(worker_id), 0, 0)
    assert isinstance(member, bytes)
    return member.decode()


def test_withdraw_removes_a_worker_at_once(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    _advertise(slots, "w1", 3)
    _reserve(slots)

    assert slots.withdraw("w1") is True
    assert slots.withdraw("w1") is False
    assert redis_client.keys("*") == []


def test_cap_holds_across_threads(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    for worker_id in ("w1", "w2"):
        slots.advertise(worker_id, stream_url="wss://x", slots=3, heartbeat_ttl_s=HEARTBEAT_S)
    start = threading.Barrier(8)

    def hammer(_: int) -> list[SlotReservation]:
        start.wait()
        got = (slots.reserve(reservation_ttl_s=RESERVE_S) for _ in range(25))
        return [r for r in got if r is not None]

    with ThreadPoolExecutor(8) as pool:
        reservations = [r for batch in pool.map(hammer, range(8)) for r in batch]

    assert Counter(r.worker_id for r in reservations) == {"w1": 3, "w2": 3}
    assert len({r.reservation_id for r in reservations}) == 6
    assert slots.free_slots() == 0


@pytest.mark.parametrize("worker_id", ["live", "a:b", "", "w 1"])
def test_worker_ids_that_would_alias_keys_are_refused(
    redis_client: redis.Redis, worker_id: str
) -> None:
    with pytest.raises(ValueError):
        MediaSlots(redis_client).advertise(
            worker_id, stream_url="wss://x", slots=1, heartbeat_ttl_s=HEARTBEAT_S
        )


def test_withdraw_refuses_an_id_that_names_the_live_set(redis_client: redis.Redis) -> None:
    slots = MediaSlots(redis_client)
    _advertise(slots, "w1", 1)
    with pytest.raises(ValueError):
        slots.withdraw("live")
    assert slots.free_slots(now_ms=T0) == 1


def test_key_affixes_rebuild_the_per_worker_keys() -> None:
    prefix, suffix = redis_keys.media_worker_key_affixes()
    assert redis_keys.media_worker("w-1.a") == prefix + "w-1.a"
    assert redis_keys.media_reservations("w-1.a") == prefix + "w-1.a" + suffix


async def test_async_advertise_renew_release_withdraw(
    redis_client: redis.Redis, async_redis: redis.asyncio.Redis
) -> None:
    dispatch, worker = MediaSlots(redis_client), AsyncMediaSlots(async_redis)
    await worker.advertise("w1", stream_url="wss://w1", slots=1, heartbeat_ttl_s=5, now_ms=T0)
    held = _reserve(dispatch)
    assert held is not None and (held.worker_id, held.stream_url) == ("w1", "wss://w1")

    await worker.advertise(
        "w1", stream_url="wss://w1", slots=1, heartbeat_ttl_s=5, now_ms=T0 + 4_000
    )
    assert await worker.renew("w1", held.reservation_id, reservation_ttl_s=10, now_ms=T0 + 8_000)
    assert _reserve(dispatch, T0 + 8_500) is None  # still held past its first expiry

    assert await worker.release("w1", held.reservation_id) is True
    assert await worker.release("w1", held.reservation_id) is False
    assert dispatch.free_slots(now_ms=T0 + 8_500) == 1

    await worker.advertise(
        "w1", stream_url="wss://w1", slots=1, heartbeat_ttl_s=5, draining=True, now_ms=T0 + 8_500
    )
    assert dispatch.free_slots(now_ms=T0 + 8_500) == 0
    assert await worker.withdraw("w1") is True
    assert redis_client.keys("*") == []
