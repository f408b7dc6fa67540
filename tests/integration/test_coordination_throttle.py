"""Alert throttle against the real Redis: once per period per kind and subject."""

from __future__ import annotations

import time

import redis

from shared import redis_keys
from shared.coordination import AlertThrottle


def test_first_call_in_a_period_alerts_and_repeats_do_not(redis_client: redis.Redis) -> None:
    throttle = AlertThrottle(redis_client)

    assert throttle.allow("number_unavailable", "num-1", every_s=600) is True
    assert throttle.allow("number_unavailable", "num-1", every_s=600) is False
    assert throttle.allow("number_unavailable", "num-2", every_s=600) is True
    assert throttle.allow("tts_failover", "num-1", every_s=600) is True
    key = redis_keys.alert_throttle("number_unavailable", "num-1")
    assert 599_000 < redis_client.pttl(key) <= 600_000


def test_alerts_again_once_the_period_is_over(redis_client: redis.Redis) -> None:
    throttle = AlertThrottle(redis_client)
    assert throttle.allow("no_media_capacity", "fleet", every_s=0.2) is True
    assert throttle.allow("no_media_capacity", "fleet", every_s=0.2) is False
    time.sleep(0.3)

    assert throttle.allow("no_media_capacity", "fleet", every_s=0.2) is True
