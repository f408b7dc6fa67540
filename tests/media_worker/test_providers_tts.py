"""The offline voices: tone length follows the text, espeak through libespeak-ng or its binary,
WAV helpers."""

from __future__ import annotations

import io
import stat
import sys
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from pipecat.frames.frames import (
    ErrorFrame,
    Frame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.worker import PipelineParams
from pipecat.tests.utils import run_test

from media_worker.providers.audio import (
    WavFormatError,
    parse_wav,
    pcm16_to_float,
    resample_pcm,
    tone_pcm,
)
from media_worker.providers.errors import ProviderUnavailable
from media_worker.providers.espeak_tts import EspeakTTSService
from media_worker.providers.pcm_tts import PcmTTSService
from media_worker.providers.tone_tts import ToneTTSService
from shared.speech import libespeak
from shared.speech.errors import EspeakUnavailable

RATE = 8000
TTS_FRAMES = (TTSStartedFrame, TTSAudioRawFrame, TTSStoppedFrame)


async def speak(tts: PcmTTSService, *texts: str) -> tuple[Sequence[Frame], Sequence[Frame]]:
    return await run_test(
        tts,
        frames_to_send=[TTSSpeakFrame(text) for text in texts],
        pipeline_params=PipelineParams(audio_out_sample_rate=RATE),
    )


def audio_bytes(frames: Sequence[Frame]) -> bytes:
    return b"".join(f.audio for f in frames if isinstance(f, TTSAudioRawFrame))


def wav_bytes(
    samples: np.ndarray, rate: int, *, channels: int = 1, fake_sizes: bool = False
) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(samples.astype("<i2").tobytes())
    data = buffer.getvalue()
    if fake_sizes:  # what a streaming writer leaves: sizes it could not know
        data = data[:4] + b"\xff\xff\xff\x7f" + data[8:40] + b"\xff\xff\xff\x7f" + data[44:]
    return data


async def test_tone_audio_length_is_proportional_to_text() -> None:
    short, long = "Hello.", "Hello, this is a much longer sentence."
    down, _ = await speak(ToneTTSService(), short)
    down_long, _ = await speak(ToneTTSService(), long)

    for frames, text in ((down, short), (down_long, long)):
        audio = audio_bytes(frames)
        assert len(audio) == round(len(text) * 0.060 * RATE) * 2
        chunks = [f for f in frames if isinstance(f, TTSAudioRawFrame)]
        assert all(f.sample_rate == RATE and f.num_channels == 1 for f in chunks)
        kinds = [type(f) for f in frames if isinstance(f, TTS_FRAMES)]
        assert kinds[0] is TTSStartedFrame and kinds[-1] is TTSStoppedFrame
        assert set(kinds[1:-1]) == {TTSAudioRawFrame}
    assert np.abs(pcm16_to_float(audio_bytes(down))).max() > 0.1


def test_tone_pcm_is_a_faded_sine() -> None:
    samples = pcm16_to_float(tone_pcm(0.1, RATE, frequency_hz=400, amplitude=0.5))
    assert samples.size == 800
    assert abs(samples[0]) < 0.01 and abs(samples[-1]) < 0.05
    assert 0.45 < np.abs(samples).max() <= 0.5


def test_parse_wav_tolerates_streaming_sizes_and_mixes_channels() -> None:
    mono = (np.sin(np.arange(2205) / 10) * 10000).astype(np.int16)
    parsed = parse_wav(wav_bytes(mono, 22050, fake_sizes=True))
    assert parsed.sample_rate_hz == 22050
    assert parsed.pcm == mono.astype("<i2").tobytes()
    stereo = np.repeat(mono, 2)
    assert parse_wav(wav_bytes(stereo, 22050, channels=2)).pcm == parsed.pcm
    with pytest.raises(WavFormatError):
        parse_wav(b"RIFF\x00\x00\x00\x00WAVEjunk")


def test_resampling_keeps_duration_and_removes_aliases() -> None:
    seconds = 0.5
    t = np.arange(int(22050 * seconds)) / 22050
    low = (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2").tobytes()
    high = (np.sin(2 * np.pi * 6000 * t) * 8000).astype("<i2").tobytes()  # above 4 kHz Nyquist
    down_low = pcm16_to_float(resample_pcm(low, 22050, RATE))
    down_high = pcm16_to_float(resample_pcm(high, 22050, RATE))
    assert down_low.size == round(t.size * RATE / 22050)
    assert np.sqrt(np.mean(down_low**2)) > 0.15
    assert np.sqrt(np.mean(down_high[100:-100] ** 2)) < 0.02  # filtered, not folded to 2 kHz
    up = resample_pcm(resample_pcm(low, 22050, 16000), 16000, 22050)
    assert abs(len(up) - len(low)) <= 4


FAKE_ESPEAK = """#!{python}
import io, sys, wave
text = sys.stdin.read()
args = sys.argv[1:]
if "--stdout" not in args or "--stdin" not in args:
    sys.exit("expected --stdout --stdin")
if text.strip() == "fail":
    sys.stderr.write("voice broke")
    sys.exit(3)
buffer = io.BytesIO()
with wave.open(buffer, "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(22050)
    w.writeframes(b"\\x10\\x00" * (len(text) * 441))  # 20 ms per character
sys.stdout.buffer.write(buffer.getvalue())
"""


@pytest.fixture
def fake_espeak(tmp_path: Path) -> Path:
    """A stand-in for the espeak-ng binary (a tool outside the system): a WAV at 22.05 kHz,
    20 ms per character of stdin; exits 3 for the text "fail"."""
    path = tmp_path / "espeak-ng"
    path.write_text(FAKE_ESPEAK.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


async def test_espeak_subprocess_output_is_resampled_to_the_pipeline_rate(
    fake_espeak: Path,
) -> None:
    down, up = await speak(EspeakTTSService(binary=str(fake_espeak), voice="en"), "Hello there.")
    assert len(audio_bytes(down)) == pytest.approx(len("Hello there.") * 0.020 * RATE * 2, abs=4)
    assert not [f for f in up if isinstance(f, ErrorFrame)]


async def test_espeak_failure_is_an_error_frame_without_audio(fake_espeak: Path) -> None:
    tts = EspeakTTSService(binary=str(fake_espeak), stop_frame_timeout_s=0.2)
    down, up = await speak(tts, "fail")
    assert audio_bytes(down) == b""
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert "exited with 3: voice broke" in errors[0].error


def test_espeak_without_binary_fails_at_construction() -> None:
    with pytest.raises(ProviderUnavailable, match="not on PATH"):
        EspeakTTSService(binary="/nonexistent/espeak-ng")


async def test_espeak_speaks_through_the_packaged_library() -> None:
    tts = EspeakTTSService()
    assert tts.engine == "libespeak-ng"
    down, up = await speak(tts, "Your order is confirmed.", "Thank you.")
    chunks = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert chunks and all(f.sample_rate == RATE and f.num_channels == 1 for f in chunks)
    samples = pcm16_to_float(audio_bytes(down))
    assert samples.size > RATE * 1.0
    assert np.abs(samples).max() > 0.05
    assert not [f for f in up if isinstance(f, ErrorFrame)]


async def test_espeak_over_its_time_limit_is_an_error_frame() -> None:
    tts = EspeakTTSService(synth_timeout_s=0, stop_frame_timeout_s=0.2)
    down, up = await speak(tts, "Your order is confirmed.")
    assert audio_bytes(down) == b""
    errors = [f for f in up if isinstance(f, ErrorFrame)]
    assert "took longer than 0 s" in errors[0].error


def test_espeak_without_library_or_binary_fails_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unavailable() -> libespeak.LibEspeak:
        raise EspeakUnavailable("libespeak-ng", "the espeakng-loader package is missing")

    monkeypatch.setattr(libespeak, "shared_library", unavailable)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ProviderUnavailable, match="espeakng-loader package is missing"):
        EspeakTTSService()
