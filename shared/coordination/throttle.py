"""Alert throttle: one alert per (kind, subject) per period, fleet-wide.

A marker key set with `SET NX PX`: the first caller in a period creates it and may alert; callers
finding it alive stay quiet until it expires. The subject is part of the key, so it must be an id
(number id, merchant id, provider), never a phone number.
"""

from __future__ import annotations

import redis

from shared import redis_keys
from shared.coordination._scripts import to_ms


class AlertThrottle:
    """Decides whether an alert is the first of its period."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def allow(self, kind: str, subject: str, *, every_s: float) -> bool:
        """True for the first call per `every_s` for this kind and subject, False for repeats."""
        key = redis_keys.alert_throttle(kind, subject)
        return bool(self._client.set(key, b"1", nx=True, px=to_ms(every_s, "every_s")))
