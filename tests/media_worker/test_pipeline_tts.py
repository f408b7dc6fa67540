"""The call pipeline's TTS side, built by `build_call_pipeline` and run for real: both voices
behind the switcher, per-utterance provider attribution, failover within one utterance with
nothing lost, and the fleet-wide health record steering the next call (real Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
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
from media_worker.providers.flaky import FlakyKnobs, FlakyTTSService
from media_worker.record import CallEventKind, CallRecord
from media_worker.store import CallContext
from media_worker.tts_health import TTSHealthPolicy
from media_worker.tts_health_call import TTSEvent
from media_worker.tts_health_monitor import provider_of
from shared.coordination.tts_health import AsyncTtsHealth, StartState
from shared.settings import Settings
from shared.templates import load_example, parse_template
from tests.media_worker.payloads import COD_PAYLOAD

WAIT_S = 20.0
POLICY = TTSHealthPolicy(failure_threshold=2, degraded_cooldown_s=60, audio_timeout_s=30)


@pytest.fixture
async def aredis(settings: Settings, redis_client: Any) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


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
) -> RunningCall:
    transport = FakeTransport()
    record = CallRecord("cod_confirmation")
    call = build_call_pipeline(
        transport,
        cod_context(),
        call_sid,
        aredis,
        ProviderKeys(),
        record=record,
        overrides=overrides,
        tts_policy=policy,
    )
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


async def test_the_switcher_holds_both_voices_built_at_call_start(aredis: aioredis.Redis) -> None:
    running = await start_call(aredis, flaky_overrides())
    try:
        call = running.call
        assert [v.provider for v in call.voices] == ["flaky", "tone"]
        assert call.tts_switcher.services == [v.service for v in call.voices]
        assert isinstance(call.voices[0].service, FlakyTTSService)
        assert call.tts_switcher.strategy.active_service is call.voices[0].service
        assert call.tts_health.active_provider == "flaky"
        assert call.vad_enabled is False  # the sim STT's fast path
    finally:
        await running.end()


async def test_each_utterance_is_recorded_with_the_voice_that_spoke_it(
    aredis: aioredis.Redis,
) -> None:
    running = await start_call(aredis, flaky_overrides())
    try:
        await running.speak("Hello from the primary.")
        await running.until(lambda: len(agent_turns(running.record)) == 1)
        # A manual switch (as the health logic does) changes who speaks, and the record follows.
        await running.call.tts_health._injector.switch_to(running.call.voices[1].service)
        await running.speak("Hello from the fallback.")
        await running.until(lambda: len(agent_turns(running.record)) == 2)
    finally:
        await running.end()
    assert agent_turns(running.record) == [
        ("Hello from the primary.", "flaky"),
        ("Hello from the fallback.", "tone"),
    ]
    assert set(running.transport.heard.audio) == {"flaky", "tone"}


async def test_a_failing_voice_switches_within_one_utterance_and_nothing_is_lost(
    aredis: aioredis.Redis,
) -> None:
    running = await start_call(aredis, flaky_overrides(fail_first_n=2))
    try:
        await running.speak("Am I speaking with Asha?")
        await running.until(lambda: bool(agent_turns(running.record)))
        await running.speak("Thank you.")
        await running.until(lambda: len(agent_turns(running.record)) == 2)
    finally:
        await running.end()

    # Tried twice on the primary (threshold 2), then spoken once, by the fallback.
    assert agent_turns(running.record) == [
        ("Am I speaking with Asha?", "tone"),
        ("Thank you.", "tone"),
    ]
    flaky = running.call.voices[0].service
    assert isinstance(flaky, FlakyTTSService) and flaky.plan.requests == 2
    assert running.transport.heard.audio.get("flaky", 0) == 0
    assert running.call.tts_health.active_provider == "tone"
    [failover] = [e for e in running.record.events if e.kind == CallEventKind.TTS_FAILOVER]
    assert failover.details == {"from": "flaky", "to": "tone", "reason": "error"}
    # The flip is on the attempt through the finalize record, and fleet-wide in Redis.
    events = running.record.to_finalize_record()["events"]
    assert any(e["kind"] == CallEventKind.TTS_FAILOVER for e in events)
    assert any(e["kind"] == TTSEvent.PROVIDER_DEGRADED for e in events)
    health = await AsyncTtsHealth(aredis).read("flaky")
    assert health is not None and health.state == "degraded" and health.flips == 1
    assert 0 < await aredis.pttl("cf:tts:flaky")


async def test_a_voice_answering_with_silence_is_a_failure_too(aredis: aioredis.Redis) -> None:
    running = await start_call(aredis, flaky_overrides(silent_audio=True))
    try:
        await running.speak("Your order is on its way.")
        await running.until(lambda: bool(agent_turns(running.record)))
    finally:
        await running.end()
    assert agent_turns(running.record) == [("Your order is on its way.", "tone")]
    [failover] = [e for e in running.record.events if e.kind == CallEventKind.TTS_FAILOVER]
    assert failover.details["reason"] == "silence"


async def test_one_failure_under_the_threshold_is_retried_on_the_same_voice(
    aredis: aioredis.Redis,
) -> None:
    running = await start_call(aredis, flaky_overrides(fail_first_n=1))
    try:
        await running.speak("Hello there.")
        await running.until(lambda: bool(agent_turns(running.record)))
    finally:
        await running.end()
    assert agent_turns(running.record) == [("Hello there.", "flaky")]
    assert running.call.tts_health.active_provider == "flaky"
    assert not [e for e in running.record.events if e.kind == CallEventKind.TTS_FAILOVER]
    assert await AsyncTtsHealth(aredis).read("flaky") is None


async def test_a_call_built_after_a_flip_starts_on_the_fallback(aredis: aioredis.Redis) -> None:
    first = await start_call(aredis, flaky_overrides(fail_first_n=2), call_sid="CA" + "1" * 32)
    try:
        await first.speak("Hello.")
        await first.until(lambda: bool(agent_turns(first.record)))
    finally:
        await first.end()

    # A healthy primary this time: the fleet record alone keeps the new call off it.
    second = await start_call(aredis, flaky_overrides(), call_sid="CA" + "2" * 32)
    try:
        assert second.call.tts_health.active_provider == "tone"
        await second.speak("Good morning.")
        await second.until(lambda: bool(agent_turns(second.record)))
    finally:
        await second.end()
    assert agent_turns(second.record) == [("Good morning.", "tone")]
    flaky = second.call.voices[0].service
    assert isinstance(flaky, FlakyTTSService) and flaky.plan.requests == 0
    assert [e.kind for e in second.record.events] == [TTSEvent.STARTED_ON_FALLBACK]


async def test_after_the_cooldown_one_call_probes_and_restores_the_primary(
    aredis: aioredis.Redis,
) -> None:
    fleet = AsyncTtsHealth(aredis)
    # Degraded with its cooldown already over (explicit clock: no waiting).
    await fleet.mark_degraded(
        "flaky", cooldown_s=1, record_ttl_s=600, reason="error", reporter="t", now_ms=1_000
    )
    probe = await start_call(aredis, flaky_overrides(), call_sid="CA" + "3" * 32)
    try:
        assert probe.call.tts_health.active_provider == "flaky"
        # Meanwhile nobody else probes: the claim is held.
        assert await fleet.start_state("flaky", probe_lease_s=30, owner="other") == (
            StartState.DEGRADED
        )
        await probe.speak("Hello again.")
        await probe.until(lambda: bool(agent_turns(probe.record)))
    finally:
        await probe.end()
    assert agent_turns(probe.record) == [("Hello again.", "flaky")]
    assert await fleet.read("flaky") is None  # restored fleet-wide
    kinds = [e.kind for e in probe.record.events]
    assert kinds == [TTSEvent.PROBE_STARTED, TTSEvent.PROVIDER_RESTORED]


async def test_a_failed_probe_switches_at_once_and_extends_the_cooldown(
    aredis: aioredis.Redis,
) -> None:
    fleet = AsyncTtsHealth(aredis)
    await fleet.mark_degraded(
        "flaky", cooldown_s=1, record_ttl_s=600, reason="error", reporter="t", now_ms=1_000
    )
    probe = await start_call(aredis, flaky_overrides(fail_first_n=1), call_sid="CA" + "4" * 32)
    try:
        await probe.speak("Hello again.")
        await probe.until(lambda: bool(agent_turns(probe.record)))
    finally:
        await probe.end()
    # One failure ends a probe (no second try on the primary).
    assert agent_turns(probe.record) == [("Hello again.", "tone")]
    health = await fleet.read("flaky")
    assert health is not None and health.state == "degraded" and health.probe_owner is None
    assert health.degraded_until_ms is not None and health.degraded_until_ms > 1_000 + 1_000
