"""The `sim` STT side channel: what the caller said, published on Redis pub/sub the moment
the utterance's audio ends, as `{"text", "final", "t_ms"}` on `cf:sim:stt:{CallSid}`."""

from __future__ import annotations

import json
from typing import Protocol

import structlog
from redis.exceptions import RedisError

from shared import redis_keys
from shared.redis_clients import async_redis

log = structlog.get_logger(__name__)


def stt_channel(call_sid: str) -> str:
    return redis_keys.sim_stt_channel(call_sid)


class TranscriptPublisher(Protocol):
    async def publish(self, call_sid: str, text: str, t_ms: int) -> bool:
        """Publish one final transcript; False when it could not be published."""

    async def close(self) -> None: ...


class NullPublisher:
    """No Redis configured: transcripts are only recorded in the call report."""

    async def publish(self, call_sid: str, text: str, t_ms: int) -> bool:
        return False

    async def close(self) -> None:
        return None


class RedisPublisher:
    def __init__(self, redis_url: str) -> None:
        self._redis = async_redis(redis_url)

    async def publish(self, call_sid: str, text: str, t_ms: int) -> bool:
        message = json.dumps({"text": text, "final": True, "t_ms": t_ms})
        try:
            await self._redis.publish(stt_channel(call_sid), message)
        except (RedisError, OSError) as exc:
            # The call goes on; the bot simply does not "hear" this line.
            log.warning("stt_publish_failed", call_sid=call_sid, error=repr(exc))
            return False
        return True

    async def close(self) -> None:
        await self._redis.aclose()


def make_publisher(redis_url: str | None) -> TranscriptPublisher:
    return RedisPublisher(redis_url) if redis_url else NullPublisher()
