"""Redis coordination primitives: rate windows, channel leases, media slots, locks, throttles."""

from __future__ import annotations

from shared.coordination.admission_gates import (
    AdmissionGates,
    GateNumber,
    GateRefused,
    GatesPassed,
)
from shared.coordination.channels import AsyncChannelLeases, ChannelLeases
from shared.coordination.locks import PeriodicLock, periodic_lock
from shared.coordination.media_slots import AsyncMediaSlots, MediaSlots, SlotReservation
from shared.coordination.rate_limit import RateDecision, RateLimiter
from shared.coordination.throttle import AlertThrottle

__all__ = [
    "AdmissionGates",
    "AlertThrottle",
    "GateNumber",
    "GateRefused",
    "GatesPassed",
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
