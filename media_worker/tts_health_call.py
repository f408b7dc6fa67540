"""`CallTTSHealth`: one call's TTS failover, tying the monitor's verdicts to the switcher, the
call's record and the fleet-wide health record in Redis.

- At the start (`start_service`): a primary degraded fleet-wide makes the call start on its
  fallback; once the cooldown is over exactly one call (the Redis claim) probes the primary.
  `prepare_start` asks the fleet record early, while the pipeline is still starting, so the
  StartFrame does not wait out that round trip at the injector.
- On a failed utterance: `FailoverState` decides; a switch is carried into the switcher at once
  and recorded on the call (`CallRecord.add_tts_failover`); a provider past its threshold (or a
  failed probe) is marked degraded fleet-wide; the failed text is spoken again when its
  utterance ends.
- On a good sentence from a probed primary: the record is restored fleet-wide.
- Each fleet flip (degraded, restored) is a call event and a throttled `alert` log line
  (posting alerts is the dispatcher's; the media worker logs them).

- On a hand-off to an agent (`use`): the health tracking moves to the agent's pair, which
  starts as a call would (its primary, unless it already failed past the threshold on this call
  or is degraded fleet-wide); the caller switches the TTS to the service it returns.

Every voice the call may use is watched from the start (one monitor per distinct service), so
a late failure of a voice the call has left is still judged; each TTS frame is also tagged with
the voice id that produced it (`voice_of`), for the transcript.

The fleet record is advisory: a Redis failure or timeout is logged and the call goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from pipecat.frames.frames import (
    Frame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameProcessor
from redis.exceptions import RedisError

from media_worker.record import CallRecord
from media_worker.tts_health import FailoverState, FailureReason, TTSHealthPolicy
from media_worker.tts_health_monitor import MonitoredVoice, Sleep, TTSFrameMonitor
from media_worker.tts_health_processors import TTSFailoverInjector
from shared.coordination.tts_health import AsyncTtsHealth, StartState

log = structlog.get_logger(__name__)

_FLEET_ERRORS = (RedisError, OSError, TimeoutError)
_VOICE_FRAMES = (TTSStartedFrame, TTSTextFrame, TTSAudioRawFrame, TTSStoppedFrame)
TAG_VOICE = "callfleet.tts_voice"
T = TypeVar("T")


def voice_of(frame: Frame) -> str | None:
    """The voice id of the call's voice that produced `frame`, if one of them did."""
    voice = frame.metadata.get(TAG_VOICE)
    return voice if isinstance(voice, str) else None


class TTSEvent:
    """Call event kinds written here (the record's own kind covers the per-call switch)."""

    STARTED_ON_FALLBACK = "tts_started_on_fallback"
    PROBE_STARTED = "tts_probe_started"
    PROVIDER_DEGRADED = "tts_provider_degraded"
    PROVIDER_RESTORED = "tts_provider_restored"
    TEXT_LOST = "tts_text_lost"


@dataclass(frozen=True)
class Voice:
    """A voice built for the call: the template's provider name, voice id and its service."""

    provider: str
    voice_id: str
    service: FrameProcessor
    text_after_audio: bool = True


class CallTTSHealth:
    """Implements the monitor's `FailureListener`. `voices`: the pair the call starts with, in
    preference order (primary first); `watched`: every other voice the call may switch to (an
    orchestrator's agents), watched from the start too."""

    def __init__(
        self,
        voices: Sequence[Voice],
        policy: TTSHealthPolicy,
        *,
        record: CallRecord,
        injector: TTSFailoverInjector,
        fleet: AsyncTtsHealth | None,
        call_id: str,
        sleep: Sleep = asyncio.sleep,
        watched: Sequence[Voice] = (),
    ) -> None:
        self._policy = policy
        self._record = record
        self._injector = injector
        self._fleet = fleet
        self._call_id = call_id
        self._start_choice: asyncio.Task[FrameProcessor | None] | None = None
        self._respeak: dict[str, bool] = {}
        self._tripped: set[str] = set()
        self._voices: dict[str, Voice] = {}
        self._primary = ""
        self.state = self._point_at(voices)
        distinct: dict[int, Voice] = {}
        for voice in (*voices, *watched):
            distinct.setdefault(id(voice.service), voice)
        self._watched = tuple(distinct.values())
        self.monitors = tuple(
            TTSFrameMonitor(
                [MonitoredVoice(v.provider, v.service, v.text_after_audio)],
                self,
                audio_timeout_s=policy.audio_timeout_s,
                silence_peak=policy.silence_peak,
                sleep=sleep,
            )
            for v in self._watched
        )

    @property
    def active_provider(self) -> str:
        return self.state.active

    @property
    def active_voice(self) -> Voice:
        return self._voices[self.state.active]

    @property
    def voices(self) -> tuple[Voice, ...]:
        """The pair tracked now, in preference order."""
        return tuple(self._voices.values())

    def service(self, provider: str) -> FrameProcessor:
        return self._voices[provider].service

    def attach(self) -> None:
        """Hook every watched voice's service (once, before the pipeline starts)."""
        for monitor in self.monitors:
            monitor.attach()
        for voice in self._watched:
            voice.service.add_event_handler("on_before_push_frame", _voice_tagger(voice.voice_id))

    async def close(self) -> None:
        self.drop_start_choice()
        await asyncio.gather(*(monitor.close() for monitor in self.monitors))

    def drop_start_choice(self) -> None:
        """Cancel a start choice still being decided (the call ends before its pipeline ran)."""
        if self._start_choice is not None and not self._start_choice.done():
            self._start_choice.cancel()

    def _point_at(self, voices: Sequence[Voice]) -> FailoverState:
        if not voices:
            raise ValueError("a call needs at least one voice")
        self._voices = {v.provider: v for v in voices}
        self._primary = voices[0].provider
        return FailoverState(list(self._voices), threshold=self._policy.failure_threshold)

    # --- the call's start ----------------------------------------------------------------------

    def prepare_start(self) -> None:
        """Begin deciding the start's service now (see `start_service`); call it once the call
        is built, with the loop running."""
        if self._start_choice is None:
            self._start_choice = asyncio.create_task(
                self._starting_service(agent=None), name="tts-start-choice"
            )
            self._start_choice.add_done_callback(_log_start_choice_failure)

    async def start_service(self) -> FrameProcessor | None:
        """The service to start on when it is not the primary (the injector's start hook): the
        choice `prepare_start` began, else decided now."""
        if self._start_choice is None:
            return await self._starting_service(agent=None)
        return await self._start_choice

    async def use(self, voices: Sequence[Voice], *, agent: str) -> FrameProcessor:
        """Track `voices` (agent `agent`'s pair, primary first) from now on, and return the
        service to speak with: its primary, or its fallback when the primary failed past the
        threshold on this call or is degraded fleet-wide (one Redis call, bounded by the
        policy's `fleet_timeout_s`). The caller switches the TTS to it, in pipeline order."""
        self.state = self._point_at(voices)
        log.info("tts_voice_pair_changed", agent=agent, providers=list(self._voices))
        service = await self._starting_service(agent=agent)
        return service or self._voices[self._primary].service

    async def _starting_service(self, *, agent: str | None) -> FrameProcessor | None:
        fallback = next((p for p in self._voices if p != self._primary), None)
        if fallback is None:
            return None
        details: dict[str, Any] = {"provider": self._primary, "fallback": fallback}
        if agent is not None:
            details["agent"] = agent
        if self._primary in self._tripped and fallback not in self._tripped:
            # Failed past the threshold earlier in this call (another speaker's voice).
            return self._start_on(fallback, {**details, "cause": "failed_in_call"})
        if self._fleet is None:
            return None
        fleet = self._fleet
        state = await self._fleet_call(
            fleet.start_state(
                self._primary, probe_lease_s=self._policy.probe_lease_s, owner=self._call_id
            )
        )
        if state is StartState.DEGRADED:
            return self._start_on(fallback, details)
        if state is StartState.PROBE:
            self.state.probing = self._primary
            self._record.add_event(
                TTSEvent.PROBE_STARTED, {k: v for k, v in details.items() if k != "fallback"}
            )
            log.info("tts_probe_started", provider=self._primary, agent=agent)
        return None

    def _start_on(self, fallback: str, details: dict[str, Any]) -> FrameProcessor:
        self.state.switch(fallback)
        self._record.add_event(TTSEvent.STARTED_ON_FALLBACK, details)
        log.info("tts_started_on_fallback", **details)
        return self._voices[fallback].service

    # --- the monitor's verdicts ----------------------------------------------------------------

    async def sentence_failed(self, provider: str, context_id: str, reason: FailureReason) -> None:
        if provider not in self._voices:
            # A voice the call has left (the previous speaker's), failing on words queued
            # before the hand-off: they are said again by the voice speaking now.
            self._respeak[context_id] = True
            return
        decision = self.state.failure(provider)
        self._respeak[context_id] = decision.respeak
        if self.state.failures(provider) >= self._policy.failure_threshold or decision.ended_probe:
            self._tripped.add(provider)
        if decision.switch_to is not None:
            self._record.add_tts_failover(provider, decision.switch_to, str(reason))
            log.warning(
                "tts_failover", from_provider=provider, to_provider=decision.switch_to,
                reason=str(reason), probe=decision.ended_probe,
            )  # fmt: skip
            await self._injector.switch_to(self._voices[decision.switch_to].service)
        if decision.degrade:
            await self._mark_degraded(provider, reason)

    async def sentence_succeeded(self, provider: str) -> None:
        self._tripped.discard(provider)
        if self.state.success(provider) and self._fleet is not None:
            restored = await self._fleet_call(self._fleet.restore(provider, owner=self._call_id))
            if restored:
                self._record.add_event(TTSEvent.PROVIDER_RESTORED, {"provider": provider})
                log.info("tts_provider_restored", provider=provider)
                await self._alert("tts_provider_restored", provider, "TTS provider healthy again")

    async def context_failed(self, provider: str, context_id: str, texts: list[str]) -> None:
        if not texts:
            return
        if self._respeak.pop(context_id, False):
            await self._injector.speak(" ".join(texts))
            return
        # Past the threshold with no voice left: saying it again would only fail again.
        log.error("tts_text_lost", provider=provider, sentences=len(texts))
        self._record.add_event(TTSEvent.TEXT_LOST, {"provider": provider, "sentences": len(texts)})

    # --- the fleet record ----------------------------------------------------------------------

    async def _mark_degraded(self, provider: str, reason: FailureReason) -> None:
        if self._fleet is None:
            return
        result = await self._fleet_call(
            self._fleet.mark_degraded(
                provider,
                cooldown_s=self._policy.degraded_cooldown_s,
                record_ttl_s=self._policy.record_ttl_s,
                reason=str(reason),
                reporter=self._call_id,
            )
        )
        if result is None or not result.flipped:
            return
        details = {"provider": provider, "reason": str(reason)}
        self._record.add_event(
            TTSEvent.PROVIDER_DEGRADED, {**details, "until_ms": result.degraded_until_ms}
        )
        log.warning("tts_provider_degraded", **details)
        await self._alert("tts_provider_degraded", provider, f"TTS provider degraded: {reason}")

    async def _alert(self, kind: str, provider: str, message: str) -> None:
        if self._fleet is None:
            return
        every_s = self._policy.alert_every_s
        first = await self._fleet_call(self._fleet.allow_alert(kind, provider, every_s=every_s))
        if first:
            log.warning("alert", kind=kind, subject=provider, alert_message=message)

    async def _fleet_call(self, call: Awaitable[T]) -> T | None:
        try:
            async with asyncio.timeout(self._policy.fleet_timeout_s):
                return await call
        except _FLEET_ERRORS as exc:
            log.warning("tts_health_fleet_unavailable", error=repr(exc))
            return None


def _log_start_choice_failure(task: asyncio.Task[FrameProcessor | None]) -> None:
    # Retrieved here so that a choice nobody awaits (the pipeline never started) is still seen.
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("tts_start_choice_failed", error=repr(exc))


def _voice_tagger(voice_id: str) -> Callable[[Any, Frame], Awaitable[None]]:
    async def tag(_service: Any, frame: Frame) -> None:
        if isinstance(frame, _VOICE_FRAMES):
            frame.metadata[TAG_VOICE] = voice_id

    return tag
