"""Per-recipient sliding-window dial limiter: a read-only peek and an atomic record.

One sorted set per (merchant, recipient phone digest): member = the dial's id (the attempt id),
score = dial time in ms. Admission peeks first (cheap, writes nothing) and records last, after it
holds a channel and a media slot; `record` is the only place the limit is enforced atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from shared import redis_keys
from shared.coordination._scripts import clock_arg, load_lua, positive, to_ms

_PEEK_LUA = load_lua("rate_peek.lua")
_RECORD_LUA = load_lua("rate_record.lua")


@dataclass(frozen=True)
class RateDecision:
    """Whether a dial may go now; if not, how long until one entry leaves the window."""

    allowed: bool
    retry_after_ms: int
    count: int


def _decision(raw: Any) -> RateDecision:
    allowed, retry_after_ms, count = (int(value) for value in raw)
    return RateDecision(bool(allowed), max(retry_after_ms, 0), count)


class RateLimiter:
    """Sliding-window limit on dials per recipient, over the sync Redis client."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._peek = client.register_script(_PEEK_LUA)
        self._record = client.register_script(_RECORD_LUA)

    def peek(
        self,
        merchant_id: str,
        e164: str,
        *,
        limit: int,
        window_s: float,
        now_ms: int | None = None,
    ) -> RateDecision:
        """Would one more dial fit in the window now? Reads only; never trims or writes."""
        raw = self._peek(
            keys=[redis_keys.rate_window(merchant_id, e164)],
            args=[clock_arg(now_ms), positive(limit, "limit"), to_ms(window_s, "window_s")],
        )
        return _decision(raw)

    def record(
        self,
        merchant_id: str,
        e164: str,
        *,
        member: str,
        limit: int,
        window_s: float,
        now_ms: int | None = None,
    ) -> RateDecision:
        """Record the dial `member` (e.g. the attempt id) if it fits; atomic and idempotent."""
        raw = self._record(
            keys=[redis_keys.rate_window(merchant_id, e164)],
            args=[
                clock_arg(now_ms),
                positive(limit, "limit"),
                to_ms(window_s, "window_s"),
                member,
            ],
        )
        return _decision(raw)

    def forget(self, merchant_id: str, e164: str, member: str) -> bool:
        """Remove one recorded dial (refused before the carrier took it); True if it was there."""
        return bool(self._client.zrem(redis_keys.rate_window(merchant_id, e164), member))
