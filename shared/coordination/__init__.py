"""Redis coordination primitives: rate windows, channel leases, media slots, locks, throttles."""

from __future__ import annotations

from shared.coordination.channels import AsyncChannelLeases, ChannelLeases
from shared.coordination.locks import PeriodicLock, periodic_lock
from shared.coordination.media_slots import AsyncMediaSlots, MediaSlots, SlotReservation
from shared.coordination.rate_limit import RateDecision, RateLimiter
from shared.coordination.throttle import AlertThrottle

__all__ = [
    "AlertThrottle",
    "AsyncChannelLeases",
    "AsyncMediaSlots",
    "ChannelLeases",
    "MediaSlots",
    "PeriodicLock",
    "RateDecision",
    "RateLimiter",
    "SlotReservation",
    "periodic_lock",
]
