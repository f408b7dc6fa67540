"""Fixtures the media worker's tests share: an asyncio Redis client on the emptied test db."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.settings import Settings


@pytest.fixture
async def aredis(settings: Settings, redis_client: Any) -> AsyncIterator[aioredis.Redis]:
    """The test Redis db (emptied by `redis_client`) over the asyncio client."""
    client = aioredis.Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()
