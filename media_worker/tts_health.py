"""TTS health, the pure core: the policy (thresholds, timeouts) and one call's failover state.

Rules (`FailoverState`), per call:

- a failure counts against the voice that produced it (never the active one by default);
  a success resets that voice's count;
- when a voice reaches `failure_threshold` failures in a row, or fails once while it is the
  fleet's half-open probe, the call switches to the first other voice still under the
  threshold, and the fleet record marks the failed provider degraded;
- the failed text is spoken again on the voice active after that decision, unless the voice
  that failed is past its threshold with nowhere to switch (the text is then given up, so a
  dead pair of voices cannot loop).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.settings import Settings


class FailureReason(StrEnum):
    """Why one utterance counts as a TTS failure."""

    ERROR = "error"
    TIMEOUT = "no_audio_timeout"
    NO_AUDIO = "no_audio"
    SILENCE = "silence"


@dataclass(frozen=True)
class TTSHealthPolicy:
    """The knobs, documented on `shared.settings.Settings` (`tts_*`). `fleet_timeout_s` bounds
    each Redis health call: past it the call goes on without the fleet record."""

    failure_threshold: int = 2
    audio_timeout_s: float = 4.0
    silence_peak: int = 200
    degraded_cooldown_s: float = 60.0
    probe_lease_s: float = 30.0
    record_ttl_s: float = 900.0
    alert_every_s: float = 1800.0
    fleet_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if self.audio_timeout_s <= 0 or self.fleet_timeout_s <= 0:
            raise ValueError("timeouts must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> TTSHealthPolicy:
        return cls(
            failure_threshold=settings.tts_failure_threshold,
            audio_timeout_s=settings.tts_audio_timeout_s,
            silence_peak=settings.tts_silence_peak,
            degraded_cooldown_s=settings.tts_degraded_cooldown_s,
            probe_lease_s=settings.tts_probe_lease_s,
            record_ttl_s=settings.tts_health_record_ttl_s,
            alert_every_s=settings.tts_alert_every_s,
        )


@dataclass(frozen=True)
class FailureDecision:
    """What one failure leads to: `switch_to` a voice now (None: stay), speak the failed text
    again (`respeak`, on the voice active afterwards), and whether the failed provider is now
    to be marked degraded fleet-wide (`degrade`)."""

    switch_to: str | None
    respeak: bool
    degrade: bool
    ended_probe: bool = False


class FailoverState:
    """One call's voices (in preference order), which one speaks, and failures in a row."""

    def __init__(self, providers: Sequence[str], *, threshold: int) -> None:
        if not providers or len(set(providers)) != len(providers):
            raise ValueError(f"voices must be distinct and at least one: {list(providers)}")
        self._providers = list(providers)
        self._threshold = threshold
        self._failures = dict.fromkeys(self._providers, 0)
        self.active = self._providers[0]
        self.probing: str | None = None

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(self._providers)

    def failures(self, provider: str) -> int:
        return self._failures.get(provider, 0)

    def switch(self, provider: str) -> None:
        if provider not in self._failures:
            raise ValueError(f"not one of this call's voices: {provider!r}")
        self.active = provider

    def failure(self, provider: str) -> FailureDecision:
        """Count one failure of `provider`; an unknown provider changes nothing."""
        if provider not in self._failures:
            return FailureDecision(switch_to=None, respeak=False, degrade=False)
        self._failures[provider] += 1
        ended_probe = provider == self.probing
        if ended_probe:
            self.probing = None
        tripped = ended_probe or self._failures[provider] == self._threshold
        past = ended_probe or self._failures[provider] >= self._threshold
        if not past:
            return FailureDecision(switch_to=None, respeak=True, degrade=False)
        switch_to = None
        if provider == self.active:
            switch_to = next(
                (p for p in self._providers if p != provider and not self._tripped(p)), None
            )
            if switch_to is not None:
                self.active = switch_to
        # A voice we already left failing late (its queued utterances) is re-spoken on the
        # active one; the active voice past its threshold with nowhere to go is given up.
        respeak = switch_to is not None or provider != self.active
        return FailureDecision(switch_to, respeak, degrade=tripped, ended_probe=ended_probe)

    def success(self, provider: str) -> bool:
        """Reset `provider`'s count; True when this success ends its half-open probe."""
        if provider not in self._failures:
            return False
        self._failures[provider] = 0
        if provider == self.probing:
            self.probing = None
            return True
        return False

    def _tripped(self, provider: str) -> bool:
        return self._failures[provider] >= self._threshold
