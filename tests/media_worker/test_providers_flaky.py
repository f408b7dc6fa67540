"""The flaky TTS wrapper: fails first N, fails at a seeded rate, speaks silence, adds latency."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame, TTSSpeakFrame
from pipecat.pipeline.worker import PipelineParams
from pipecat.tests.utils import run_test
from pipecat.utils.errors import ErrorCategory

from media_worker.providers.audio import pcm16_to_float
from media_worker.providers.flaky import FailurePlan, FlakyKnobs, FlakyTTSService, Verdict
from media_worker.providers.tone_tts import ToneTTSService

RATE = 8000


def flaky(knobs: FlakyKnobs, **options: Any) -> FlakyTTSService:
    # Short silence timeout: a failed request has no audio, so pipecat closes its context
    # only after stop_frame_timeout_s.
    return FlakyTTSService(
        inner=ToneTTSService(),
        knobs=knobs,
        stop_frame_timeout_s=0.2,
        max_consecutive_zero_audio_contexts=0,
        **options,
    )


async def speak(tts: FlakyTTSService, *texts: str) -> tuple[Sequence[Frame], Sequence[Frame]]:
    return await run_test(
        tts,
        frames_to_send=[TTSSpeakFrame(text) for text in texts],
        pipeline_params=PipelineParams(audio_out_sample_rate=RATE),
    )


def audio_per_context(frames: Sequence[Frame]) -> dict[str | None, bytes]:
    audio: dict[str | None, bytes] = {}
    for frame in frames:
        if isinstance(frame, TTSAudioRawFrame):
            audio[frame.context_id] = audio.get(frame.context_id, b"") + frame.audio
    return audio


def injected(frames: Sequence[Frame]) -> list[ErrorFrame]:
    return [f for f in frames if isinstance(f, ErrorFrame) and "injected failure" in f.error]


async def test_fails_first_n_then_speaks() -> None:
    tts = flaky(FlakyKnobs(fail_first_n=2))
    down, up = await speak(tts, "one", "two", "three", "four")

    errors = injected(up)
    assert [e.category for e in errors] == [ErrorCategory.SERVER, ErrorCategory.SERVER]
    assert all(e.processor is tts for e in errors)
    spoken = audio_per_context(down)
    assert [len(a) for a in spoken.values()] == [
        round(len(t) * 0.06 * RATE) * 2 for t in ("three", "four")
    ]
    assert tts.plan.requests == 4


def test_failure_probability_is_reproducible_with_a_seed() -> None:
    knobs = FlakyKnobs(fail_probability=0.5, seed=7)
    plan_a, plan_b = FailurePlan(knobs), FailurePlan(knobs)
    verdicts = [plan_a.next_verdict() for _ in range(40)]
    assert verdicts == [plan_b.next_verdict() for _ in range(40)]
    rng = random.Random(7)
    assert verdicts == [Verdict.FAIL if rng.random() < 0.5 else Verdict.SPEAK for _ in range(40)]
    assert 5 < verdicts.count(Verdict.FAIL) < 35
    always = FailurePlan(FlakyKnobs(fail_probability=1.0))
    never = FailurePlan(FlakyKnobs(fail_probability=0.0, seed=7))
    assert {always.next_verdict() for _ in range(5)} == {Verdict.FAIL}
    assert {never.next_verdict() for _ in range(5)} == {Verdict.SPEAK}


def test_without_a_seed_each_plan_draws_its_own_failures() -> None:
    knobs = FlakyKnobs(fail_probability=0.5, seed=None)
    first, second = (
        [plan.next_verdict() for _ in range(64)]
        for plan in (FailurePlan(knobs), FailurePlan(knobs))
    )
    # Two fresh sequences of 64 fair draws coincide with probability 2**-64.
    assert first != second
    assert 8 < first.count(Verdict.FAIL) < 56


def test_first_n_and_silence_combine() -> None:
    plan = FailurePlan(FlakyKnobs(fail_first_n=2, silent_audio=True))
    assert [plan.next_verdict() for _ in range(4)] == [
        Verdict.FAIL,
        Verdict.FAIL,
        Verdict.SILENT,
        Verdict.SILENT,
    ]


async def test_probability_knob_in_the_pipeline() -> None:
    knobs = FlakyKnobs(fail_probability=0.5, seed=3)
    rng = random.Random(3)
    expected_failures = sum(rng.random() < 0.5 for _ in range(6))
    down, up = await speak(flaky(knobs), *[f"sentence {i}." for i in range(6)])
    assert len(injected(up)) == expected_failures
    assert len(audio_per_context(down)) == 6 - expected_failures


async def test_silent_audio_is_zeros_of_the_right_length() -> None:
    down, up = await speak(flaky(FlakyKnobs(silent_audio=True)), "Your order is confirmed.")
    [audio] = audio_per_context(down).values()
    assert len(audio) == round(len("Your order is confirmed.") * 0.06 * RATE) * 2
    assert not np.any(pcm16_to_float(audio))
    assert not injected(up)


async def test_added_latency() -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)  # the delay asked for; no need to spend it

    down, _ = await speak(flaky(FlakyKnobs(added_latency_s=0.4), sleep=record), "Hi.")
    assert waits == [0.4]
    assert audio_per_context(down)


def test_wrapped_provider_stays_visible() -> None:
    inner = ToneTTSService(voice="beep")
    tts = FlakyTTSService(inner=inner)
    assert tts.name == f"Flaky({inner.name})"
    assert tts.inner is inner and tts.wrapped_provider == "tone" and tts.provider == "flaky"
    assert tts.voice == "beep"


@pytest.mark.parametrize(
    "knobs",
    [{"fail_first_n": -1}, {"fail_probability": 1.5}, {"added_latency_s": -0.1}],
)
def test_knobs_are_validated(knobs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        FlakyKnobs(**knobs)  # type: ignore[arg-type]
