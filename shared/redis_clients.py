"""Redis clients built one way for every process: the driver's name and version resolved once
per process instead of once per connection (redis-py reads its package metadata from disk for
each new connection otherwise, a cost every call start paid in the media worker)."""

from __future__ import annotations

from functools import cache

import redis
import redis.asyncio as aioredis
from redis.driver_info import DriverInfo


@cache
def _driver_info() -> DriverInfo:
    return DriverInfo()


def sync_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, driver_info=_driver_info())


def async_redis(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, driver_info=_driver_info())
