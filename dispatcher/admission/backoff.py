"""Jittered exponential backoff for capacity waits (full jitter over a growing ceiling)."""

from __future__ import annotations

import random


def capacity_backoff_s(
    consecutive_deferrals: int, *, base_s: float, cap_s: float, rng: random.Random
) -> float:
    """Delay before the next try after `consecutive_deferrals` waits in a row (0-based).

    Full jitter spreads a crowd of leads waiting on one number over the whole interval,
    so they do not retry in lockstep; the floor of half a base keeps retries from spinning.
    """
    ceiling = min(cap_s, base_s * (2 ** min(consecutive_deferrals, 30)))
    return max(base_s / 2, rng.uniform(0, ceiling))
