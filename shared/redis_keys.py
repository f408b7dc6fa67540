"""Every key callfleet keeps in Redis, built in one place. Redis holds only rebuildable state.

Keys never contain a phone number: per-recipient keys use `shared.phones.phone_digest`.
"""

from __future__ import annotations

from shared.phones import phone_digest

PREFIX = "cf"


def rate_window(merchant_id: str, e164: str) -> str:
    """Sorted set of recent dial times for one recipient (sliding window)."""
    return f"{PREFIX}:rl:{merchant_id}:{phone_digest(e164)}"


def channel_leases(number_id: str) -> str:
    """Sorted set of channel-token ids for one outbound number, scored by lease expiry."""
    return f"{PREFIX}:ch:{number_id}"


def media_workers() -> str:
    """Sorted set of live media worker ids, scored by heartbeat expiry."""
    return f"{PREFIX}:mw:live"


def media_worker(worker_id: str) -> str:
    """Hash of one media worker's stream URL, slot capacity and draining flag."""
    return f"{PREFIX}:mw:{worker_id}"


def media_reservations(worker_id: str) -> str:
    """Sorted set of slot reservation ids on one media worker, scored by reservation expiry."""
    return f"{PREFIX}:mw:{worker_id}:resv"


def media_worker_key_affixes() -> tuple[str, str]:
    """(prefix, reservations suffix) for Lua that derives the two keys above from a worker id."""
    return f"{PREFIX}:mw:", ":resv"


def provider_health(provider: str) -> str:
    """Hash of one TTS provider's fleet-wide health record."""
    return f"{PREFIX}:tts:{provider}"


def alert_throttle(kind: str, subject: str) -> str:
    """Marker that suppresses repeats of one alert while it lives."""
    return f"{PREFIX}:alert:{kind}:{subject}"


def periodic_lock(job: str) -> str:
    """Lock held by whichever beat-triggered run of a periodic job is in progress."""
    return f"{PREFIX}:lock:{job}"


def call_token_used(token_id: str) -> str:
    """Marker that a single-use call token has been spent."""
    return f"{PREFIX}:tok:{token_id}"


def sim_stt_channel(call_sid: str) -> str:
    """Pub/sub channel where the simulated callee publishes what it said (the `sim` STT)."""
    return f"{PREFIX}:sim:stt:{call_sid}"


def fleet_metrics() -> str:
    """Hash of fleet-wide counter and histogram values, added to by every process."""
    return f"{PREFIX}:metrics"
