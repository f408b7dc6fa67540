"""How a call's turns end and where the caller's audio goes: `sim` ends turns on its own
proposals with no model, the audio STTs keep Smart Turn on the process's shared session (no
call loads a model), and the caller's audio stops after its last listener."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroOnnxModel
from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame, TextFrame
from pipecat.observers.base_observer import BaseObserver, FrameProcessed, FramePushed
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregator
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.stt_service import STTService
from pipecat.tests.utils import run_test
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from redis.asyncio import Redis

from media_worker.pipeline import build_call_pipeline, user_turn_strategies
from media_worker.providers.factory import ProviderKeys
from media_worker.providers.turn_models import SharedSmartTurnAnalyzer, load_turn_models
from media_worker.record import CallRecord
from media_worker.transport.caller_audio import (
    CallerAudioFrame,
    CallerAudioSink,
    SpokenAudioSink,
)
from tests.media_worker.pipeline_harness import (
    WAIT_S,
    FakeTransport,
    cod_context,
    flaky_overrides,
    start_call,
)


def test_sim_turns_end_on_its_own_proposals() -> None:
    strategies = user_turn_strategies("sim")
    assert isinstance(strategies, ExternalUserTurnStrategies)
    assert not any(isinstance(s, TurnAnalyzerUserTurnStopStrategy) for s in strategies.stop or [])


@pytest.mark.parametrize("stt", ["moonshine", "deepgram", "openai"])
def test_audio_stts_end_turns_with_the_shared_smart_turn(stt: str) -> None:
    strategies = user_turn_strategies(stt)  # type: ignore[arg-type]
    (stop,) = strategies.stop or []
    assert isinstance(stop, TurnAnalyzerUserTurnStopStrategy)
    assert isinstance(stop._turn_analyzer, SharedSmartTurnAnalyzer)  # no public accessor


def _refuse(*_args: Any, **_kwargs: Any) -> None:
    raise AssertionError("a call loaded an ONNX model of its own")


@pytest.mark.parametrize("stt", ["moonshine", "sim"])
async def test_building_a_call_loads_no_model(
    aredis: Redis, monkeypatch: pytest.MonkeyPatch, stt: str
) -> None:
    load_turn_models()  # the process's, as the worker does at start
    monkeypatch.setattr(LocalSmartTurnAnalyzerV3, "__init__", _refuse)
    monkeypatch.setattr(SileroOnnxModel, "__init__", _refuse)
    call = build_call_pipeline(
        FakeTransport(), cod_context(), "CA" + "6" * 32, aredis, ProviderKeys(),
        record=CallRecord("cod_confirmation"), overrides=replace(flaky_overrides(), stt=stt),
    )  # fmt: skip
    assert call.vad_enabled is (stt != "sim")
    # Nothing hears the caller's audio on `sim` without a VAD: the transport may skip it.
    assert call.hears_caller is (stt != "sim")


async def test_a_forced_vad_hears_the_caller_even_on_sim(aredis: Redis) -> None:
    call = build_call_pipeline(
        FakeTransport(), cod_context(), "CA" + "7" * 32, aredis, ProviderKeys(),
        record=CallRecord("cod_confirmation"),
        overrides=replace(flaky_overrides(), stt="sim", vad=True),
    )  # fmt: skip
    assert call.vad_enabled and call.hears_caller


async def test_a_call_watches_its_frames_with_its_own_observer_only(aredis: Redis) -> None:
    call = build_call_pipeline(
        FakeTransport(), cod_context(), "CA" + "5" * 32, aredis, ProviderKeys(),
        record=CallRecord("cod_confirmation"), overrides=flaky_overrides(),
    )  # fmt: skip
    assert call.worker.turn_tracking_observer is None
    with pytest.raises(Exception, match="RTVI is not enabled"):
        call.worker.rtvi  # noqa: B018  # the property raises when RTVI is off


class _AudioPushes(BaseObserver):
    """Which processor handed caller audio to which, and when `last` processed `marker`."""

    def __init__(self, last: type[FrameProcessor], marker: Frame) -> None:
        super().__init__()
        self.hops: list[tuple[FrameProcessor, FrameProcessor]] = []
        self.marker_reached_last = asyncio.Event()
        self._last = last
        self._marker = marker

    async def on_push_frame(self, data: FramePushed) -> None:
        if (
            isinstance(data.frame, InputAudioRawFrame)
            and data.direction is FrameDirection.DOWNSTREAM
        ):
            self.hops.append((data.source, data.destination))

    async def on_process_frame(self, data: FrameProcessed) -> None:
        if data.frame is self._marker and isinstance(data.processor, self._last):
            self.marker_reached_last.set()


@pytest.mark.parametrize(("vad", "last_listener"), [(None, STTService), (True, CallerAudioSink)])
async def test_caller_audio_stops_after_its_last_listener(
    aredis: Redis, vad: bool | None, last_listener: type[FrameProcessor]
) -> None:
    """Without a VAD the STT is the last listener and drops each chunk itself; with one, the
    user aggregator hands it to the sink. Either way nothing past them sees caller audio."""
    running = await start_call(aredis, replace(flaky_overrides(), vad=vad))
    chunk, marker = (
        CallerAudioFrame(audio=b"\0" * 320, sample_rate=8000, num_channels=1) for _ in range(2)
    )
    pushes = _AudioPushes(last_listener, marker)
    running.call.worker.add_observer(pushes)
    try:
        # Frames reach a processor in order, so once it has the marker it is done with the chunk.
        await running.call.worker.queue_frames([chunk, marker])
        async with asyncio.timeout(WAIT_S):
            await pushes.marker_reached_last.wait()
    finally:
        await running.end()
    sources = [s for s, _ in pushes.hops]
    assert sources, "the caller's audio reached no processor"
    if vad is None:
        assert not any(isinstance(s, STTService) for s in sources)
    else:
        into_sink = [s for s, d in pushes.hops if isinstance(d, CallerAudioSink)]
        assert into_sink and all(isinstance(s, LLMUserAggregator) for s in into_sink)
    assert not any(isinstance(s, CallerAudioSink) for s in sources)
    assert not any(s is running.transport.output() for s in sources)


async def test_the_sink_drops_caller_audio_and_passes_the_rest() -> None:
    chunk = CallerAudioFrame(audio=b"\0" * 320, sample_rate=8000, num_channels=1)
    down, _up = await run_test(
        CallerAudioSink(), frames_to_send=[chunk, TextFrame("hi")], expected_down_frames=[TextFrame]
    )
    assert [type(f) for f in down] == [TextFrame]


async def test_the_spoken_audio_sink_drops_sent_bot_audio_and_passes_the_rest() -> None:
    sent = OutputAudioRawFrame(audio=b"\0" * 320, sample_rate=8000, num_channels=1)
    down, _up = await run_test(
        SpokenAudioSink(), frames_to_send=[sent, TextFrame("hi")], expected_down_frames=[TextFrame]
    )
    assert [type(f) for f in down] == [TextFrame]


def test_caller_audio_prints_as_its_name() -> None:
    chunk = CallerAudioFrame(audio=b"\0" * 320, sample_rate=8000, num_channels=1)
    assert isinstance(chunk, InputAudioRawFrame) and chunk.num_frames == 160
    assert str(chunk) == chunk.name
