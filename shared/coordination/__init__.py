"""Redis coordination primitives: rate windows, channel leases, media slots, locks, throttles,
TTS provider health."""

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
from shared.coordination.tts_health import AsyncTtsHealth, DegradeResult, ProviderHealth, StartState

__all__ = [
    "AdmissionGates",
    "GateNumber",
    "GateRefused",
    "GatesPassed",
    "AlertThrottle",
    "AsyncChannelLeases",
    "AsyncMediaSlots",
    "AsyncTtsHealth",
    "ChannelLeases",
    "DegradeResult",
    "MediaSlots",
    "PeriodicLock",
    "ProviderHealth",
    "RateDecision",
    "RateLimiter",
    "SlotReservation",
    "StartState",
    "periodic_lock",
]
