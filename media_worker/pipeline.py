"""One call's pipecat pipeline: the Twilio stream's audio in, STT, the flow-driven LLM, TTS,
the stream's audio out, with the call's transcript written to its `CallRecord` on the way.

Out of scope here (see DESIGN.md "Media worker"): the TTS `ServiceSwitcher` with its fallback
voice and health observer, VAD tuning and latency observers. The template's primary voice is
the one built; `fallback` is not wired yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from pipecat.frames.frames import (
    Frame,
    TranscriptionFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService
from pipecat.transports.base_transport import BaseTransport

from media_worker.protocol import SAMPLE_RATE_HZ
from media_worker.providers.factory import (
    CallInfo,
    ProviderKeys,
    build_llm,
    build_stt,
    build_tts,
)
from media_worker.providers.scripted_llm import ScriptPolicy
from media_worker.record import CallRecord, utc_now
from media_worker.store import CallContext
from shared.templates.policies import LlmProvider, SttProvider, TtsProvider


@dataclass(frozen=True)
class ProviderOverrides:
    """Providers to use instead of the template's (offline runs: `sim`/`scripted`/`tone`).

    `tts_voice` replaces the voice id too (a real provider's voice id means nothing to
    `tone`); None keeps the template's.
    """

    stt: SttProvider | None = None
    llm: LlmProvider | None = None
    tts: TtsProvider | None = None
    tts_voice: str | None = None
    script: ScriptPolicy | None = None

    @classmethod
    def offline(cls, *, script: ScriptPolicy | None = None) -> ProviderOverrides:
        return cls(stt="sim", llm="scripted", tts="tone", tts_voice="tone", script=script)


@dataclass(frozen=True)
class CallPipeline:
    """The assembled call: run `worker`; start a `FlowManager` on `llm` and `aggregators`."""

    worker: PipelineWorker
    llm: LLMService[Any]
    aggregators: LLMContextAggregatorPair
    tts_provider: str


class TranscriptRecorder(FrameProcessor):
    """Writes what was said into the call's record: the customer's final transcriptions (placed
    after the STT) or the agent's spoken text, one utterance per TTS start/stop (after the TTS)."""

    def __init__(self, record: CallRecord, *, speaker: str, tts_provider: str | None = None):
        super().__init__()
        self._record = record
        self._speaker = speaker
        self._tts_provider = tts_provider
        self._spoken: list[str] = []
        self._started_at: datetime | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if self._speaker == "customer":
            if isinstance(frame, TranscriptionFrame):
                self._record.add_utterance("customer", frame.text, started_at=utc_now())
        elif isinstance(frame, TTSStartedFrame):
            self._flush()
            self._started_at = utc_now()
        elif isinstance(frame, TTSTextFrame):
            self._spoken.append(frame.text)
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
                tts_provider=self._tts_provider,
            )
        self._spoken = []
        self._started_at = None

    async def cleanup(self) -> None:
        self._flush()
        await super().cleanup()  # type: ignore[no-untyped-call]


def build_call_pipeline(
    transport: BaseTransport,
    context: CallContext,
    call_sid: str,
    redis: aioredis.Redis,
    keys: ProviderKeys,
    *,
    record: CallRecord,
    overrides: ProviderOverrides | None = None,
) -> CallPipeline:
    """transport in -> STT -> user aggregator -> LLM -> TTS -> transport out -> assistant
    aggregator, at Twilio's 8 kHz both ways. Raises the factory's provider errors."""
    overrides = overrides or ProviderOverrides()
    definition = context.definition
    call = CallInfo(call_sid=call_sid, redis=redis, sample_rate_hz=SAMPLE_RATE_HZ)
    tts_provider = overrides.tts or definition.voice.provider
    voice_id = overrides.tts_voice or definition.voice.voice_id
    stt = build_stt(overrides.stt or definition.stt, keys, call)
    llm = build_llm(overrides.llm or definition.llm, keys, call, script=overrides.script)
    tts = build_tts(tts_provider, voice_id, keys, call)
    aggregators = LLMContextAggregatorPair(LLMContext())
    pipeline = Pipeline(
        [
            transport.input(),
            stt,
            TranscriptRecorder(record, speaker="customer"),
            aggregators.user(),
            llm,
            tts,
            TranscriptRecorder(record, speaker="agent", tts_provider=tts_provider),
            transport.output(),
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(
            audio_in_sample_rate=SAMPLE_RATE_HZ, audio_out_sample_rate=SAMPLE_RATE_HZ
        ),
        cancel_on_idle_timeout=False,
    )
    return CallPipeline(worker, llm, aggregators, tts_provider)
