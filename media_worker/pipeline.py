"""One call's pipecat pipeline: the Twilio stream's audio in, STT (with Silero VAD for audio
STTs), the flow-driven LLM, the call's voices behind a `ServiceSwitcher` watched by the TTS
health monitor, the stream's audio out, and the transcript and turn latency written to the
call's `CallRecord` on the way.

    transport in -> STT -> customer recorder -> user aggregator (VAD) -> LLM
      -> failover injector -> ServiceSwitcher[primary, fallback] -> drop gate
      -> agent recorder -> transport out -> assistant aggregator

Both voices are built at call start (no cold start on a switch); see `tts_health_call` for
when the call switches and how the fleet-wide record steers new calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
import structlog
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.frames.frames import (
    Frame,
    TranscriptionFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.service_switcher import ServiceSwitcher, ServiceSwitcherStrategyManual
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService
from pipecat.transports.base_transport import BaseTransport

from media_worker.observers import TurnLatencyObserver
from media_worker.protocol import SAMPLE_RATE_HZ
from media_worker.providers.errors import ProviderNotConfigured, ProviderUnavailable
from media_worker.providers.factory import (
    CallInfo,
    ProviderKeys,
    build_llm,
    build_stt,
    build_tts,
)
from media_worker.providers.flaky import FlakyKnobs
from media_worker.providers.pcm_tts import PcmTTSService
from media_worker.providers.scripted_llm import ScriptPolicy
from media_worker.record import CallRecord, utc_now
from media_worker.store import CallContext
from media_worker.tts_health import TTSHealthPolicy
from media_worker.tts_health_call import CallTTSHealth, Voice
from media_worker.tts_health_monitor import Sleep, provider_of
from media_worker.tts_health_processors import TTSDropGate, TTSFailoverInjector
from shared.coordination.tts_health import AsyncTtsHealth
from shared.templates import TemplateDefinition
from shared.templates.policies import LlmProvider, SttProvider, TtsProvider

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ProviderOverrides:
    """Providers to use instead of the template's (offline runs: `sim`/`scripted`/`tone`).

    `tts_voice` replaces the voice id too (a real provider's voice id means nothing to
    `tone`); None keeps the template's. `tts_fallback` (+ `tts_fallback_voice`) replaces the
    template's fallback voice. `tts_flaky`/`tts_fallback_flaky` are the failure knobs of a
    `flaky` primary/fallback. `vad`: None turns Silero VAD on for the audio STTs and off for
    `sim` (which ends turns itself, from the simulator's words); True/False force it.
    """

    stt: SttProvider | None = None
    llm: LlmProvider | None = None
    tts: TtsProvider | None = None
    tts_voice: str | None = None
    script: ScriptPolicy | None = None
    tts_fallback: TtsProvider | None = None
    tts_fallback_voice: str | None = None
    tts_flaky: FlakyKnobs | None = None
    tts_fallback_flaky: FlakyKnobs | None = None
    vad: bool | None = None

    @classmethod
    def offline(cls, *, script: ScriptPolicy | None = None) -> ProviderOverrides:
        return cls(stt="sim", llm="scripted", tts="tone", tts_voice="tone", script=script)


@dataclass(frozen=True)
class CallPipeline:
    """The assembled call: run `worker`; start a `FlowManager` on `llm` and `aggregators`.

    `tts_provider` is the primary voice's provider; `tts_health.active_provider` the one
    speaking now. `voices` are primary first, then the fallback if it could be built.
    """

    worker: PipelineWorker
    llm: LLMService[Any]
    aggregators: LLMContextAggregatorPair
    tts_provider: str
    tts_switcher: ServiceSwitcher[ServiceSwitcherStrategyManual]
    tts_health: CallTTSHealth
    voices: tuple[Voice, ...]
    vad_analyzer: VADAnalyzer | None
    latency: TurnLatencyObserver

    @property
    def vad_enabled(self) -> bool:
        return self.vad_analyzer is not None


class TranscriptRecorder(FrameProcessor):
    """Writes what was said into the call's record: the customer's final transcriptions (placed
    after the STT) or the agent's spoken text, one utterance per TTS start/stop (after the TTS),
    labelled with the voice that produced it (the frames' provider tag; `tts_provider` for
    untagged ones)."""

    def __init__(self, record: CallRecord, *, speaker: str, tts_provider: str | None = None):
        super().__init__()
        self._record = record
        self._speaker = speaker
        self._tts_provider = tts_provider
        self._spoken: list[str] = []
        self._spoken_by: str | None = None
        self._started_at: datetime | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if self._speaker == "customer":
            if isinstance(frame, TranscriptionFrame):
                self._record.add_utterance("customer", frame.text, started_at=utc_now())
        elif isinstance(frame, TTSStartedFrame):
            self._flush()
            self._started_at = utc_now()
            self._spoken_by = provider_of(frame)
        elif isinstance(frame, TTSTextFrame):
            self._spoken.append(frame.text)
            self._spoken_by = self._spoken_by or provider_of(frame)
        elif isinstance(frame, TTSStoppedFrame):
            self._flush()
        await self.push_frame(frame, direction)

    def _flush(self) -> None:
        if self._spoken:
            self._record.add_utterance(
                "agent",
                " ".join(part.strip() for part in self._spoken),
                started_at=self._started_at or utc_now(),
                ended_at=utc_now(),
                tts_provider=self._spoken_by or self._tts_provider,
            )
        self._spoken = []
        self._spoken_by = None
        self._started_at = None

    async def cleanup(self) -> None:
        self._flush()
        await super().cleanup()  # type: ignore[no-untyped-call]


def vad_enabled(stt: SttProvider, override: bool | None = None) -> bool:
    """Silero VAD runs for STTs that hear audio; the `sim` STT's turns need none."""
    return override if override is not None else stt != "sim"


def build_voices(
    definition: TemplateDefinition,
    overrides: ProviderOverrides,
    keys: ProviderKeys,
    call: CallInfo,
) -> list[Voice]:
    """The primary voice, then the fallback (template's or overridden) when it is another
    provider and can be built here; one that cannot is logged and left out (the call still
    speaks). Raises the factory's errors for the primary."""
    provider = overrides.tts or definition.voice.provider
    voice_id = overrides.tts_voice or definition.voice.voice_id
    primary = build_tts(provider, voice_id, keys, call, flaky=overrides.tts_flaky)
    voices = [Voice(provider, voice_id, primary, isinstance(primary, PcmTTSService))]
    template_fallback = definition.voice.fallback
    fallback_provider = overrides.tts_fallback or (
        template_fallback.provider if template_fallback else None
    )
    if fallback_provider is None or fallback_provider == provider:
        return voices
    fallback_voice = overrides.tts_fallback_voice or (
        template_fallback.voice_id
        if template_fallback and template_fallback.provider == fallback_provider
        else fallback_provider
    )
    try:
        service = build_tts(
            fallback_provider, fallback_voice, keys, call, flaky=overrides.tts_fallback_flaky
        )
    except (ProviderNotConfigured, ProviderUnavailable) as exc:
        log.warning("tts_fallback_unavailable", provider=fallback_provider, error=str(exc))
        return voices
    text_after_audio = isinstance(service, PcmTTSService)
    voices.append(Voice(fallback_provider, fallback_voice, service, text_after_audio))
    return voices


def build_call_pipeline(
    transport: BaseTransport,
    context: CallContext,
    call_sid: str,
    redis: aioredis.Redis,
    keys: ProviderKeys,
    *,
    record: CallRecord,
    overrides: ProviderOverrides | None = None,
    tts_policy: TTSHealthPolicy | None = None,
    tts_fleet: AsyncTtsHealth | None = None,
    time_source: Callable[[], float] = time.time,
    sleep: Sleep = asyncio.sleep,
) -> CallPipeline:
    """The call's pipeline (see the module docstring), at Twilio's 8 kHz both ways.

    `tts_policy` defaults to the settings' defaults; `tts_fleet` (the fleet-wide health
    record) defaults to one on `redis`. `time_source` (latency) and `sleep` (the TTS audio
    timeout) are injectable for tests. Raises the factory's provider errors.
    """
    overrides = overrides or ProviderOverrides()
    policy = tts_policy or TTSHealthPolicy()
    definition = context.definition
    call = CallInfo(call_sid=call_sid, redis=redis, sample_rate_hz=SAMPLE_RATE_HZ)
    stt_provider = overrides.stt or definition.stt
    stt = build_stt(stt_provider, keys, call)
    llm = build_llm(overrides.llm or definition.llm, keys, call, script=overrides.script)
    voices = build_voices(definition, overrides, keys, call)

    # The VAD runs in the user aggregator (pipecat 1.x): it cuts the segments of the audio
    # STTs (moonshine) and anchors each turn's latency at the end of the customer's speech.
    vad: VADAnalyzer | None = None
    if vad_enabled(stt_provider, overrides.vad):
        vad = SileroVADAnalyzer(sample_rate=SAMPLE_RATE_HZ)
    user_params = LLMUserAggregatorParams(vad_analyzer=vad)
    aggregators = LLMContextAggregatorPair(LLMContext(), user_params=user_params)

    switcher: ServiceSwitcher[ServiceSwitcherStrategyManual] = ServiceSwitcher(
        [v.service for v in voices], strategy_type=ServiceSwitcherStrategyManual
    )
    injector = TTSFailoverInjector()
    health = CallTTSHealth(
        voices,
        policy,
        record=record,
        injector=injector,
        fleet=tts_fleet if tts_fleet is not None else AsyncTtsHealth(redis),
        call_id=call_sid,
        sleep=sleep,
    )
    injector.set_start_hook(health.start_service)
    health.monitor.attach()
    primary = voices[0].provider
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            TranscriptRecorder(record, speaker="customer"),
            aggregators.user(),
            llm,
            injector,
            switcher,
            TTSDropGate(),
            TranscriptRecorder(record, speaker="agent", tts_provider=primary),
            transport.output(),
            aggregators.assistant(),
        ]
    )
    latency = TurnLatencyObserver(record, time_source=time_source)
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=SAMPLE_RATE_HZ, audio_out_sample_rate=SAMPLE_RATE_HZ
        ),
        observers=[latency],
        cancel_on_idle_timeout=False,
    )

    @worker.event_handler("on_pipeline_finished")  # type: ignore[untyped-decorator]
    async def _finished(worker: PipelineWorker, frame: Frame) -> None:
        await health.close()

    return CallPipeline(
        worker, llm, aggregators, primary, switcher, health, tuple(voices), vad, latency
    )
