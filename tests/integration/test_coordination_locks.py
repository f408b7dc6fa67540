"""Periodic-job locks against the real Redis: exclusion and compare-and-delete release."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import redis

from shared import redis_keys
from shared.coordination import PeriodicLock, periodic_lock


def test_second_acquirer_is_refused_while_the_first_holds(redis_client: redis.Redis) -> None:
    with periodic_lock(redis_client, "sweep", ttl_s=30) as first:
        with periodic_lock(redis_client, "sweep", ttl_s=30) as second:
            assert (first, second) == (True, False)
        with periodic_lock(redis_client, "other_job", ttl_s=30) as other:
            assert other is True
        assert redis_client.exists(redis_keys.periodic_lock("sweep")) == 1  # loser released nothing
    with periodic_lock(redis_client, "sweep", ttl_s=30) as again:
        assert again is True
    assert redis_client.keys("*") == []


def test_only_one_of_many_concurrent_runs_acquires(redis_client: redis.Redis) -> None:
    start = threading.Barrier(8)
    locks = [PeriodicLock(redis_client, "reconcile", ttl_s=30) for _ in range(8)]

    def attempt(lock: PeriodicLock) -> bool:
        start.wait()
        return lock.acquire()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, locks))

    assert results.count(True) == 1
    assert [lock.acquired for lock in locks] == results


def test_expired_holder_cannot_delete_the_next_holders_lock(redis_client: redis.Redis) -> None:
    key = redis_keys.periodic_lock("sweep")
    slow = PeriodicLock(redis_client, "sweep", ttl_s=0.05)
    assert slow.acquire()
    time.sleep(0.1)  # the slow run outlives its lock
    with periodic_lock(redis_client, "sweep", ttl_s=30) as next_run:
        assert next_run is True
        held_by_next = redis_client.get(key)

        assert slow.release() is False
        assert redis_client.get(key) == held_by_next
        assert 29_000 < redis_client.pttl(key) <= 30_000
    assert redis_client.exists(key) == 0


def test_lock_is_released_when_the_job_raises(redis_client: redis.Redis) -> None:
    lock = PeriodicLock(redis_client, "sweep", ttl_s=30)
    try:
        with lock as acquired:
            assert acquired
            raise RuntimeError("job failed")
    except RuntimeError:
        pass
    assert lock.acquired is False
    assert redis_client.exists(redis_keys.periodic_lock("sweep")) == 0
    assert lock.release() is False  # nothing left to release
