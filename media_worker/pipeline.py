"""One call's pipecat pipeline: the Twilio stream's audio in, STT (with Silero VAD for audio
STTs), the flow-driven LLM, the call's voices behind a `ServiceSwitcher` watched by the TTS
health monitor, the stream's audio out, and the transcript and turn latency written to the
call's `CallRecord` on the way.

    transport in -> STT -> customer recorder -> user aggregator (VAD, turns) -> LLM
      -> failover injector -> ServiceSwitcher[the call's voices] -> drop gate
      -> agent recorder -> transport out -> assistant aggregator

The caller's audio goes no further than its last listener: the aggregator with a VAD or Smart
Turn (audio STTs), else the STT; see `user_turn_strategies`. With no listener at all (the `sim`
STT, which hears the caller's words from the simulator, without a VAD) `hears_caller` is False
and the session tells the transport to skip the caller's audio unread.

Every voice the call may use is built at call start (no cold start on a switch): the
template's primary and fallback and, for an orchestrator, each agent's pair (`voices`); the
switcher holds them all. `CallPipeline.speak_as(agent)` moves the call to an agent's voice
when routing hands the call over. See `tts_health_call` for when the call switches and how the
fleet-wide record steers new calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
import structlog
from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.frames.frames import (
    Frame,
    ManuallySwitchServiceFrame,
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
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies, UserTurnStrategies

from media_worker.observers import TurnLatencyObserver
from media_worker.protocol import SAMPLE_RATE_HZ
from media_worker.providers.factory import (
    CallInfo,
    ProviderKeys,
    build_llm,
    build_stt,
)
from media_worker.providers.flaky import FlakyKnobs
from media_worker.providers.scripted_llm import ScriptPolicy
from media_worker.providers.turn_models import SharedSileroVADAnalyzer, SharedSmartTurnAnalyzer
from media_worker.record import CallRecord, utc_now
from media_worker.store import CallContext
from media_worker.transport.caller_audio import CallerAudioSink, SpokenAudioSink
from media_worker.tts_health import TTSHealthPolicy
from media_worker.tts_health_call import CallTTSHealth, Voice, voice_of
from media_worker.tts_health_monitor import Sleep, provider_of
from media_worker.tts_health_processors import TTSDropGate, TTSFailoverInjector
from media_worker.voices import CallVoices, VoiceBuilder, VoiceOverrides, build_call_voices
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
    `flaky` primary/fallback. These apply to an orchestrator's agents' voices too, except for
    an agent named in `agent_voices`, whose voice takes those overrides instead. `vad`: None
    turns Silero VAD on for the audio STTs and off for `sim` (which ends turns itself, from the
    simulator's words); True/False force it.
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
    agent_voices: Mapping[str, VoiceOverrides] = field(default_factory=dict)

    @classmethod
    def offline(cls, *, script: ScriptPolicy | None = None) -> ProviderOverrides:
        return cls(stt="sim", llm="scripted", tts="tone", tts_voice="tone", script=script)

    @classmethod
    def offline_stack(
        cls, *, realistic: bool = False, tts_fail_probability: float = 0.0
    ) -> ProviderOverrides:
        """The worker-wide offline choice. Fast: `sim` STT and a `tone` voice. Realistic:
        Silero VAD and `moonshine` STT on the caller's audio, an `espeak` voice. Either way the
        scripted LLM, and a fallback voice that is offline too; with `tts_fail_probability`
        the primary voice fails that share of its sentences (a `flaky` wrapper), so the TTS
        failover can be seen at work."""
        # en-us+f2: the espeak voice moonshine hears best at 8 kHz.
        primary: TtsProvider = "espeak" if realistic else "tone"
        fallback: TtsProvider = "tone" if realistic else "espeak"
        voice = "en-us+f2" if realistic else "tone"
        fallback_voice = "tone" if realistic else "en-us+f2"
        flaky = None
        if tts_fail_probability > 0:
            # A fresh draw per call: with one shared seed every call would fail the same
            # sentences, and short calls none at all.
            flaky = FlakyKnobs(fail_probability=tts_fail_probability, seed=None)
            voice = f"espeak:{voice}" if primary == "espeak" else "tone"
            primary = "flaky"
        return cls(
            stt="moonshine" if realistic else "sim",
            llm="scripted",
            tts=primary,
            tts_voice=voice,
            tts_flaky=flaky,
            tts_fallback=fallback,
            tts_fallback_voice=fallback_voice,
        )

    def voice_overrides(self, agent: str | None = None) -> VoiceOverrides:
        """What replaces the voice of `agent` (None: the call's own template)."""
        if agent is not None and agent in self.agent_voices:
            return self.agent_voices[agent]
        return VoiceOverrides(
            tts=self.tts,
            tts_voice=self.tts_voice,
            tts_flaky=self.tts_flaky,
            tts_fallback=self.tts_fallback,
            tts_fallback_voice=self.tts_fallback_voice,
            tts_fallback_flaky=self.tts_fallback_flaky,
        )


@dataclass(frozen=True)
class CallPipeline:
    """The assembled call: run `worker`; start a `FlowManager` on `llm` and `aggregators`.

    `tts_provider` is the primary voice's provider; `tts_health.active_provider` the one
    speaking now. `voices` are primary first, then the fallback if it could be built;
    `call_voices` adds each agent's pair (an orchestrator's).
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
    call_voices: CallVoices | None = None
    hears_caller: bool = True

    @property
    def vad_enabled(self) -> bool:
        return self.vad_analyzer is not None

    async def speak_as(self, agent: str) -> bool:
        """Speak with `agent`'s voice from here on: the TTS health tracking moves to its pair,
        and a switch to its primary (or its fallback, when the primary is unhealthy) is queued
        in order with the frames. False (and the voice unchanged) for an agent without voices
        of its own. For routing's `OnVoiceChange`; never blocks beyond one bounded Redis call."""
        pair = None if self.call_voices is None else self.call_voices.for_agent(agent)
        if pair is None:
            log.warning("agent_voice_missing", agent=agent)
            return False
        service = await self.tts_health.use(pair, agent=agent)
        await self.worker.queue_frame(ManuallySwitchServiceFrame(service=service))
        return True


class TranscriptRecorder(FrameProcessor):
    """Writes what was said into the call's record: the customer's final transcriptions (placed
    after the STT) or the agent's spoken text, one utterance per TTS start/stop (after the TTS),
    labelled with the voice that produced it (the frames' provider and voice tags;
    `tts_provider`, a name or what returns the one speaking now, for untagged ones)."""

    def __init__(
        self,
        record: CallRecord,
        *,
        speaker: str,
        tts_provider: str | Callable[[], str | None] | None = None,
    ):
        super().__init__(enable_direct_mode=True)
        self._record = record
        self._speaker = speaker
        self._tts_provider = tts_provider
        self._spoken: list[str] = []
        self._spoken_by: str | None = None
        self._voice: str | None = None
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
            self._voice = voice_of(frame)
        elif isinstance(frame, TTSTextFrame):
            self._spoken.append(frame.text)
            self._spoken_by = self._spoken_by or provider_of(frame)
            self._voice = self._voice or voice_of(frame)
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
                tts_provider=self._spoken_by or self._default_provider(),
                tts_voice=self._voice,
            )
        self._spoken = []
        self._spoken_by = None
        self._voice = None
        self._started_at = None

    def _default_provider(self) -> str | None:
        if callable(self._tts_provider):
            return self._tts_provider()
        return self._tts_provider

    async def cleanup(self) -> None:
        self._flush()
        await super().cleanup()  # type: ignore[no-untyped-call]


def stt_hears_audio(stt: SttProvider) -> bool:
    """Whether the STT transcribes the caller's audio; `sim` takes the words the simulator
    publishes instead."""
    return stt != "sim"


def vad_enabled(stt: SttProvider, override: bool | None = None) -> bool:
    """Silero VAD runs for STTs that hear audio; the `sim` STT's turns need none."""
    return override if override is not None else stt_hears_audio(stt)


def user_turn_strategies(stt: SttProvider) -> UserTurnStrategies:
    """How the user aggregator opens and closes the customer's turns.

    `sim` proposes each turn itself around a finalized transcript (see `SimSTTService`), so
    the external strategies (what it recommends anyway) close the turn as soon as the text is
    in, with no model. The audio STTs keep pipecat's defaults (a VAD or a transcript opens the
    turn, Smart Turn v3 closes it) on the process's shared Smart Turn session.
    """
    if stt == "sim":
        return ExternalUserTurnStrategies()
    smart_turn = TurnAnalyzerUserTurnStopStrategy(turn_analyzer=SharedSmartTurnAnalyzer())
    return UserTurnStrategies(stop=[smart_turn])


def aggregator_hears_audio(strategies: UserTurnStrategies, vad: VADAnalyzer | None) -> bool:
    """Whether the user aggregator listens to the caller's audio (with a VAD or a turn model);
    if not, the caller's audio stops at the STT."""
    return vad is not None or not isinstance(strategies, ExternalUserTurnStrategies)


def build_voices(
    definition: TemplateDefinition,
    overrides: ProviderOverrides,
    keys: ProviderKeys,
    call: CallInfo,
) -> list[Voice]:
    """The template's own pair: the primary voice, then the fallback when it is another
    provider and can be built here (see `VoiceBuilder.pair`). Raises the factory's errors for
    the primary."""
    return list(VoiceBuilder(keys, call).pair(definition.voice, overrides.voice_overrides()))


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
    llm = build_llm(overrides.llm or definition.llm, keys, call, script=overrides.script)
    call_voices = build_call_voices(
        definition, context.agents, overrides.voice_overrides, keys, call
    )
    voices = list(call_voices.main)

    # The VAD runs in the user aggregator (pipecat 1.x): it cuts the segments of the audio
    # STTs (moonshine) and anchors each turn's latency at the end of the customer's speech.
    # Both it and Smart Turn run on models loaded once per process (`turn_models`).
    vad: VADAnalyzer | None = None
    if vad_enabled(stt_provider, overrides.vad):
        vad = SharedSileroVADAnalyzer(sample_rate=SAMPLE_RATE_HZ)
    turns = user_turn_strategies(stt_provider)
    user_params = LLMUserAggregatorParams(vad_analyzer=vad, user_turn_strategies=turns)
    aggregators = LLMContextAggregatorPair(LLMContext(), user_params=user_params)
    # The caller's audio stops after its last listener (see `caller_audio`): the user
    # aggregator when it listens, else the STT itself.
    hears = aggregator_hears_audio(turns, vad)
    stt = build_stt(stt_provider, keys, call, audio_passthrough=hears)

    switcher: ServiceSwitcher[ServiceSwitcherStrategyManual] = ServiceSwitcher(
        call_voices.services, strategy_type=ServiceSwitcherStrategyManual
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
        watched=call_voices.built,
    )
    injector.set_start_hook(health.start_service)
    health.attach()
    primary = voices[0].provider
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            TranscriptRecorder(record, speaker="customer"),
            aggregators.user(),
            *([CallerAudioSink()] if hears else []),
            llm,
            injector,
            switcher,
            TTSDropGate(),
            TranscriptRecorder(
                record, speaker="agent", tts_provider=lambda: health.active_provider
            ),
            transport.output(),
            SpokenAudioSink(),
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
        # Every observer is handed every frame at every processor (a queue and a task wake-up
        # each), so the call keeps only its own: RTVI speaks to browser clients (Twilio has
        # none; its messages would ride the whole pipeline for the serializer to drop them),
        # and neither turn tracking nor the idle watch (the session caps the call) is used.
        enable_rtvi=False,
        enable_turn_tracking=False,
        idle_timeout_secs=None,
        cancel_on_idle_timeout=False,
    )

    @worker.event_handler("on_pipeline_finished")  # type: ignore[untyped-decorator]
    async def _finished(worker: PipelineWorker, frame: Frame) -> None:
        await health.close()

    return CallPipeline(
        worker,
        llm,
        aggregators,
        primary,
        switcher,
        health,
        tuple(voices),
        vad,
        latency,
        call_voices=call_voices,
        hears_caller=hears or stt_hears_audio(stt_provider),
    )
