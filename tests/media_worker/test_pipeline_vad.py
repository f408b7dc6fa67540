"""Silero VAD in the call pipeline: on for the audio STTs, off for the `sim` fast path, and
attached to the user aggregator where pipecat 1.14 runs it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pipecat.audio.vad.silero import SileroVADAnalyzer
from redis.asyncio import Redis

from media_worker.pipeline import build_call_pipeline, vad_enabled
from media_worker.providers.factory import ProviderKeys
from media_worker.record import CallRecord
from tests.media_worker.pipeline_harness import (
    FakeTransport,
    cod_context,
    flaky_overrides,
    start_call,
)


@pytest.mark.parametrize(
    ("stt", "override", "expected"),
    [
        ("moonshine", None, True),
        ("deepgram", None, True),
        ("openai", None, True),
        ("sim", None, False),
        ("sim", True, True),
        ("moonshine", False, False),
    ],
)
def test_vad_defaults_to_on_for_audio_stts_and_off_for_sim(
    stt: str, override: bool | None, expected: bool
) -> None:
    assert vad_enabled(stt, override) is expected  # type: ignore[arg-type]


async def test_an_audio_stt_pipeline_attaches_silero_to_the_user_aggregator(aredis: Redis) -> None:
    overrides = replace(flaky_overrides(), stt="moonshine")
    call = build_call_pipeline(
        FakeTransport(), cod_context(), "CA" + "8" * 32, aredis, ProviderKeys(),
        record=CallRecord("cod_confirmation"), overrides=overrides,
    )  # fmt: skip
    assert isinstance(call.vad_analyzer, SileroVADAnalyzer) and call.vad_enabled
    # pipecat keeps the analyzer in the aggregator's params; nothing public reads it back.
    assert call.aggregators.user()._params.vad_analyzer is call.vad_analyzer


async def test_a_running_pipeline_with_vad_announces_its_speech_params(aredis: Redis) -> None:
    running = await start_call(aredis, replace(flaky_overrides(), vad=True))
    try:
        assert running.call.vad_enabled
        await running.speak("Hello.")
        await running.until(lambda: running.transport.heard.utterances >= 1)
    finally:
        await running.end()
    # The VAD controller broadcasts its parameters at start.
    assert any(p is not None for p in running.transport.heard.vad_params)


async def test_the_sim_fast_path_runs_without_vad(aredis: Redis) -> None:
    running = await start_call(aredis, flaky_overrides())
    try:
        assert running.call.vad_analyzer is None
        await running.speak("Hello.")
        await running.until(lambda: running.transport.heard.utterances >= 1)
    finally:
        await running.end()
    assert all(p is None for p in running.transport.heard.vad_params)
