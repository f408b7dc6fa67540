"""Advertises this worker's capacity in Redis on a heartbeat: a dead worker's slots vanish
when its heartbeat lapses, and a draining worker is skipped by dispatch at once."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from redis.exceptions import RedisError

from shared.coordination import AsyncMediaSlots

log = structlog.get_logger(__name__)


class Heartbeat:
    def __init__(
        self,
        slots: AsyncMediaSlots,
        *,
        worker_id: str,
        stream_url: str,
        capacity: int,
        interval_s: float,
        ttl_s: float,
    ) -> None:
        self._slots = slots
        self._worker_id = worker_id
        self._stream_url = stream_url
        self._capacity = capacity
        self._interval_s = interval_s
        self._ttl_s = ttl_s
        self._draining = False
        self._task: asyncio.Task[None] | None = None

    async def beat(self) -> None:
        await self._slots.advertise(
            self._worker_id,
            stream_url=self._stream_url,
            slots=self._capacity,
            heartbeat_ttl_s=self._ttl_s,
            draining=self._draining,
        )

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except RedisError as exc:
                # Redis holds only rebuildable state: keep beating, capacity reappears.
                log.warning("heartbeat_failed", error=str(exc))
            await asyncio.sleep(self._interval_s)

    async def start(self) -> None:
        await self.beat()
        self._task = asyncio.create_task(self._run(), name="media-heartbeat")

    async def drain(self) -> None:
        """Stay advertised (live calls keep renewing) but take no new reservations."""
        self._draining = True
        await self.beat()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError):
            await self._slots.withdraw(self._worker_id)
