"""The Redis side of the `sim` STT: one pub/sub subscription and the messages published on it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from loguru import logger
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError


@dataclass(frozen=True)
class SimTranscript:
    """One message of `shared.redis_keys.sim_stt_channel`: `{"text", "final", "t_ms"}`
    (`t_ms`: where the utterance's audio ends on the call's media timeline)."""

    text: str
    final: bool
    t_ms: int
    raw: Mapping[str, Any]

    @classmethod
    def parse(cls, data: bytes | str) -> SimTranscript | None:
        """The message, or None (logged) when it is not JSON of that shape or has no words."""
        try:
            payload = json.loads(data)
        except (TypeError, ValueError):
            payload = None
        text = payload.get("text") if isinstance(payload, dict) else None
        final = payload.get("final", True) if isinstance(payload, dict) else None
        t_ms = payload.get("t_ms", 0) if isinstance(payload, dict) else None
        if (
            not isinstance(payload, dict)
            or not isinstance(text, str)
            or not isinstance(final, bool)
            or not isinstance(t_ms, int)
        ):
            logger.warning(f"sim STT: ignoring malformed message {data!r:.200}")
            return None
        if not text.strip():
            return None
        return cls(text=text.strip(), final=final, t_ms=t_ms, raw=payload)


class TranscriptSubscription:
    """A pub/sub subscription to one channel on a borrowed client.

    `open` returns once Redis has confirmed the subscription, so nothing published after it
    is missed; `transcripts` yields what arrives; `close` is idempotent.
    """

    def __init__(self, client: aioredis.Redis, channel: str, *, subscribe_timeout_s: float) -> None:
        self._client = client
        self.channel = channel
        self._subscribe_timeout_s = subscribe_timeout_s
        self._pubsub: PubSub | None = None

    async def open(self) -> None:
        """Subscribe; raises `RedisError`, `OSError` or `TimeoutError` if Redis does not answer."""
        pubsub = self._client.pubsub()
        self._pubsub = pubsub
        async with asyncio.timeout(self._subscribe_timeout_s):
            await pubsub.subscribe(self.channel)
            while True:
                message = await pubsub.get_message(timeout=self._subscribe_timeout_s)
                if message is not None and message.get("type") == "subscribe":
                    return

    async def transcripts(self) -> AsyncIterator[SimTranscript]:
        """Messages as they are published, until the subscription is closed."""
        pubsub = self._pubsub
        if pubsub is None:
            raise RuntimeError("TranscriptSubscription.transcripts() before open()")
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is None or message.get("type") != "message":
                continue
            transcript = SimTranscript.parse(message["data"])
            if transcript is not None:
                yield transcript

    async def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is None:
            return
        try:
            await pubsub.unsubscribe()
        except (RedisError, OSError) as exc:
            logger.debug(f"sim STT: unsubscribe from {self.channel} failed: {exc!r}")
        finally:
            # redis-py's PubSub.aclose is not annotated.
            await pubsub.aclose()  # type: ignore[no-untyped-call]
