"""The moonshine STT: the packaged English model, offline, on VAD-cut segments at 8 kHz."""

from __future__ import annotations

import importlib.util
import urllib.request
from pathlib import Path

import pytest
from pipecat.frames.frames import (
    InputAudioRawFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.tests.utils import run_test

from media_worker.providers.audio import parse_wav, pcm_chunks, resample_pcm
from media_worker.providers.errors import ProviderUnavailable
from media_worker.providers.moonshine_probe import moonshine_support
from media_worker.providers.moonshine_stt import (
    MoonshineSTTService,
    MoonshineTranscriber,
    moonshine_installed,
    shared_transcriber,
)

pytestmark = pytest.mark.skipif(
    not moonshine_installed(), reason="the moonshine-cpp package is not installed"
)
# Skipped, with the probe's reason, where the library cannot run (see `moonshine_probe`).
runs_here = pytest.mark.skipif(
    not moonshine_support().runs, reason=f"moonshine: {moonshine_support().reason}"
)
RATE = 8000
CHUNK_BYTES = RATE * 2 * 20 // 1000  # 20 ms, as Twilio sends it


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """moonshine-cpp downloads with urllib.request.urlretrieve; nothing here may."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"download attempted: {args!r}")

    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)


def packaged_speech(seconds: float) -> bytes:
    """The first `seconds` of the speech sample moonshine-cpp ships, at 8 kHz."""
    spec = importlib.util.find_spec("moonshine_cpp")
    assert spec is not None and spec.origin is not None
    sample = Path(spec.origin).parent / "test-data" / "beckett.wav"
    wav = parse_wav(sample.read_bytes())
    pcm = wav.pcm[: int(seconds * wav.sample_rate_hz) * 2]
    return resample_pcm(pcm, wav.sample_rate_hz, RATE)


async def transcribe_segment(stt: MoonshineSTTService, pcm: bytes) -> list[TranscriptionFrame]:
    audio = [InputAudioRawFrame(chunk, RATE, 1) for chunk in pcm_chunks(pcm, CHUNK_BYTES)]
    down, _ = await run_test(
        stt,
        frames_to_send=[VADUserStartedSpeakingFrame(), *audio, VADUserStoppedSpeakingFrame()],
        pipeline_params=PipelineParams(audio_in_sample_rate=RATE),
        start_timeout=30.0,
    )
    return [f for f in down if isinstance(f, TranscriptionFrame)]


@runs_here
async def test_speech_segment_is_transcribed() -> None:
    [transcript] = await transcribe_segment(MoonshineSTTService(), packaged_speech(3.0))
    assert "ever tried" in transcript.text.lower()
    assert "fail" in transcript.text.lower()
    assert transcript.finalized


@runs_here
async def test_silence_gives_no_transcript() -> None:
    stt = MoonshineSTTService(transcriber=shared_transcriber())
    assert await transcribe_segment(stt, bytes(RATE * 2)) == []


def test_model_directory_must_hold_a_model(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match="no moonshine model"):
        MoonshineTranscriber(tmp_path, probed=False)
