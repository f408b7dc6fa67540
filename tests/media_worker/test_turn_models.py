"""Silero VAD and Smart Turn on one ONNX session per process: the shared analyzers are pipecat's
own, set up as pipecat's constructors would (these tests fail if pipecat changes what its
constructors set), judge audio as pipecat's do, and keep their per-call state apart."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from pipecat.audio.turn.base_turn_analyzer import BaseTurnAnalyzer
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer

from media_worker.providers.turn_models import (
    SharedSileroVADAnalyzer,
    SharedSmartTurnAnalyzer,
    silero_session,
    smart_turn_session,
)

RATE_HZ = 8000
WINDOW_SAMPLES = 256  # Silero's window at 8 kHz


def _speechlike(seconds: float, *, seed: int = 1) -> bytes:
    """A voiced, syllable-like signal: harmonics of a gliding pitch under a 4 Hz envelope."""
    samples = []
    for n in range(int(seconds * RATE_HZ)):
        t = n / RATE_HZ
        pitch = 120 + 30 * math.sin(2 * math.pi * 0.5 * t + seed)
        envelope = 0.5 + 0.5 * math.sin(2 * math.pi * 4 * t)
        voiced = sum(math.sin(2 * math.pi * k * pitch * t) / k for k in range(1, 8))
        samples.append(int(6000 * envelope * voiced))
    return b"".join(max(-32768, min(32767, s)).to_bytes(2, "little", signed=True) for s in samples)


def _windows(audio: bytes) -> list[bytes]:
    size = 2 * WINDOW_SAMPLES
    return [audio[i : i + size] for i in range(0, len(audio) - size + 1, size)]


def _attributes(obj: object) -> dict[str, type]:
    """Each field's type, our Silero wrapper counted as pipecat's (which it subclasses)."""
    return {
        name: SileroOnnxModel if isinstance(value, SileroOnnxModel) else type(value)
        for name, value in vars(obj).items()
    }


def test_the_shared_vad_is_set_up_as_pipecats_constructor_sets_it_up() -> None:
    ours, theirs = (
        SharedSileroVADAnalyzer(sample_rate=RATE_HZ),
        SileroVADAnalyzer(sample_rate=RATE_HZ),
    )
    assert _attributes(ours) == _attributes(theirs)
    model: Any = ours._model  # the one private field the shared analyzer replaces
    assert _attributes(model) == _attributes(theirs._model)
    assert model.session is silero_session()


def test_the_shared_smart_turn_is_set_up_as_pipecats_constructor_sets_it_up() -> None:
    ours, theirs = SharedSmartTurnAnalyzer(), LocalSmartTurnAnalyzerV3()
    assert _attributes(ours) == _attributes(theirs)
    assert ours._session is smart_turn_session()  # the private field it replaces


def test_every_analyzer_runs_on_the_one_session() -> None:
    vads: list[Any] = [SharedSileroVADAnalyzer(sample_rate=RATE_HZ) for _ in range(3)]
    turns: list[Any] = [SharedSmartTurnAnalyzer() for _ in range(3)]
    assert {id(v._model.session) for v in vads} == {id(silero_session())}
    assert {id(t._session) for t in turns} == {id(smart_turn_session())}
    assert len({id(v._model) for v in vads}) == 3  # the recurrent state is each call's own


def _score(confidence: Any) -> float:
    return float(np.asarray(confidence).reshape(-1)[0])  # Silero answers a 1-element array


def _confidences(vad: SileroVADAnalyzer, audio: bytes) -> list[float]:
    vad.set_sample_rate(RATE_HZ)
    return [_score(vad.voice_confidence(w)) for w in _windows(audio)]


def test_the_shared_vad_hears_what_pipecats_hears_and_calls_do_not_mix() -> None:
    speech, other = _speechlike(1.0), _speechlike(1.0, seed=7)
    expected = _confidences(SileroVADAnalyzer(sample_rate=RATE_HZ), speech)
    assert max(expected) > 0.5  # the signal is speech to Silero: the comparison means something

    alone = _confidences(SharedSileroVADAnalyzer(sample_rate=RATE_HZ), speech)
    a, b = SharedSileroVADAnalyzer(), SharedSileroVADAnalyzer()
    a.set_sample_rate(RATE_HZ)
    b.set_sample_rate(RATE_HZ)
    interleaved = []
    for mine, theirs in zip(_windows(speech), _windows(other), strict=True):
        interleaved.append(_score(a.voice_confidence(mine)))
        b.voice_confidence(theirs)  # another call on the same session, between every window

    assert alone == pytest.approx(expected, abs=1e-5)
    assert interleaved == pytest.approx(expected, abs=1e-5)


async def _turn_probability(analyzer: BaseTurnAnalyzer) -> float:
    analyzer.set_sample_rate(RATE_HZ)
    frame_bytes = 2 * 160  # 20 ms
    speech = _speechlike(1.5)
    for i in range(0, len(speech), frame_bytes):
        analyzer.append_audio(speech[i : i + frame_bytes], is_speech=True)
    analyzer.append_audio(b"\0" * frame_bytes, is_speech=False)
    _state, metrics = await analyzer.analyze_end_of_turn()
    await analyzer.cleanup()
    assert metrics is not None
    probability: float = metrics.probability  # type: ignore[attr-defined]  # TurnMetricsData
    return probability


async def test_the_shared_smart_turn_judges_a_turn_as_pipecats_does() -> None:
    theirs = await _turn_probability(LocalSmartTurnAnalyzerV3())
    ours = await _turn_probability(SharedSmartTurnAnalyzer())
    assert ours == pytest.approx(theirs, abs=1e-5)
