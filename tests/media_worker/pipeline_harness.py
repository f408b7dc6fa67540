"""A call pipeline built by `build_call_pipeline` and run on a fake transport that plays
the customer's side: what the pipeline tests share."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    SpeechControlParamsFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_transport import BaseTransport
from pipecat.workers.runner import WorkerRunner

from media_worker.pipeline import CallPipeline, ProviderOverrides, build_call_pipeline
from media_worker.providers.factory import ProviderKeys
from media_worker.providers.flaky import FlakyKnobs
from media_worker.record import CallRecord
from media_worker.store import CallContext
from media_worker.tts_health import TTSHealthPolicy
from media_worker.tts_health_monitor import provider_of
from shared.templates import load_example, parse_template
from tests.media_worker.payloads import COD_PAYLOAD

WAIT_S = 20.0
POLICY = TTSHealthPolicy(failure_threshold=2, degraded_cooldown_s=60, audio_timeout_s=30)


class _Passthrough(FrameProcessor):
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


@dataclass
class Heard:
    """What reached the customer: audio bytes per voice, and each finished utterance."""

    audio: dict[str, int] = field(default_factory=dict)
    vad_params: list[Any] = field(default_factory=list)
    utterances: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class _Speaker(FrameProcessor):
    """The output side of a fake transport: bot speaking frames around TTS audio."""

    def __init__(self, heard: Heard) -> None:
        super().__init__()
        self._heard = heard
        self._speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, SpeechControlParamsFrame):
            self._heard.vad_params.append(frame.vad_params)
        if isinstance(frame, TTSAudioRawFrame):
            provider = provider_of(frame) or "?"
            self._heard.audio[provider] = self._heard.audio.get(provider, 0) + len(frame.audio)
            if not self._speaking:
                self._speaking = True
                await self.push_frame(BotStartedSpeakingFrame())
        elif isinstance(frame, TTSStoppedFrame):
            if self._speaking:
                self._speaking = False
                await self.push_frame(BotStoppedSpeakingFrame())
            self._heard.utterances += 1
            self._heard.changed.set()
        await self.push_frame(frame, direction)


class FakeTransport(BaseTransport):
    def __init__(self) -> None:
        super().__init__()
        self.heard = Heard()
        self._input = _Passthrough()
        self._output = _Speaker(self.heard)

    def input(self) -> FrameProcessor:
        return self._input

    def output(self) -> FrameProcessor:
        return self._output


def cod_context() -> CallContext:
    definition = parse_template(load_example("cod_confirmation"))
    return CallContext(uuid.uuid4(), uuid.uuid4(), dict(COD_PAYLOAD), definition)


def flaky_overrides(**knobs: Any) -> ProviderOverrides:
    return ProviderOverrides(
        stt="sim",
        llm="scripted",
        tts="flaky",
        tts_voice="tone",
        tts_flaky=FlakyKnobs(**knobs),
        tts_fallback="tone",
        tts_fallback_voice="tone",
    )


@dataclass
class RunningCall:
    call: CallPipeline
    transport: FakeTransport
    record: CallRecord
    task: asyncio.Task[None]

    async def speak(self, text: str) -> None:
        await self.call.worker.queue_frame(TTSSpeakFrame(text))

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (bounded) until `condition` holds; re-checked whenever an utterance ends."""
        async with asyncio.timeout(WAIT_S):
            while not condition():
                self.transport.heard.changed.clear()
                await self.transport.heard.changed.wait()

    async def end(self) -> None:
        await self.call.worker.queue_frame(EndFrame())
        async with asyncio.timeout(WAIT_S):
            await self.task


async def start_call(
    aredis: aioredis.Redis,
    overrides: ProviderOverrides,
    *,
    call_sid: str = "CA" + "7" * 32,
    policy: TTSHealthPolicy = POLICY,
    context: CallContext | None = None,
    prepare_start: bool = False,
) -> RunningCall:
    """A call on `context` (default: the COD example and its payload) with its pipeline
    started; with `prepare_start`, its TTS start choice begun before the pipeline runs, as the
    session does."""
    transport = FakeTransport()
    record = CallRecord(context.definition.name if context else "cod_confirmation")
    call = build_call_pipeline(
        transport,
        context or cod_context(),
        call_sid,
        aredis,
        ProviderKeys(),
        record=record,
        overrides=overrides,
        tts_policy=policy,
    )
    if prepare_start:
        call.tts_health.prepare_start()
    started = asyncio.Event()

    @call.worker.event_handler("on_pipeline_started")  # type: ignore[untyped-decorator]
    async def _started(worker: Any, frame: Frame) -> None:
        started.set()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(call.worker)
    task = asyncio.create_task(runner.run())
    async with asyncio.timeout(WAIT_S):
        await started.wait()
    return RunningCall(call, transport, record, task)


def agent_turns(record: CallRecord) -> list[tuple[str, str | None]]:
    return [(u.text, u.tts_provider) for u in record.utterances if u.speaker == "agent"]
