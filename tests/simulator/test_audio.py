"""μ-law, resampling, WAV parsing and the caller's voices (packaged espeak, a fake binary,
babble)."""

from __future__ import annotations

import io
import stat
import sys
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest

from shared.speech.pcm import speech_from_wav
from simulator.audio import (
    ESPEAK_AUTO,
    FRAME_BYTES,
    SILENCE_FRAME,
    SpeechSynth,
    babble,
    pcm_to_ulaw_8k,
    resample,
    ulaw_decode,
    ulaw_encode,
    voiced_frames,
)


def _audioop() -> object | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import audioop
        except ImportError:
            return None
    return audioop


def test_ulaw_matches_the_g711_reference_codec() -> None:
    audioop = _audioop()
    if audioop is None:
        pytest.skip("audioop is gone from this Python; the round-trip test still covers us")
    every_byte = bytes(range(256))
    reference = np.frombuffer(audioop.ulaw2lin(every_byte, 2), dtype="<i2")  # type: ignore[attr-defined]
    assert np.array_equal(ulaw_decode(every_byte), reference)
    samples = np.arange(-32768, 32768, 7, dtype=np.int16)
    assert ulaw_encode(samples) == audioop.lin2ulaw(samples.tobytes(), 2)  # type: ignore[attr-defined]


def test_ulaw_round_trips_every_code_but_negative_zero() -> None:
    codes = bytes(b for b in range(256) if b != 0x7F)  # 0x7F and 0xFF both decode to 0
    assert ulaw_encode(ulaw_decode(codes)) == codes
    assert ulaw_decode(SILENCE_FRAME).max() == 0


def test_resample_keeps_a_tone_and_drops_what_the_new_rate_cannot_carry() -> None:
    t = np.arange(22050) / 22050
    mixed = np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 6000 * t)  # 6 kHz > 4 kHz Nyquist
    down = resample(mixed, 22050, 8000)
    assert down.size == 8000
    spectrum = np.abs(np.fft.rfft(down))
    freqs = np.fft.rfftfreq(down.size, 1 / 8000)
    assert abs(freqs[np.argmax(spectrum)] - 1000) < 5
    alias = spectrum[np.abs(freqs - 2000) < 20].max()  # where 6 kHz would fold to
    assert alias < spectrum.max() * 0.05


def _wav(samples: np.ndarray, rate: int, streaming_header: bool = False) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    data = buffer.getvalue()
    if streaming_header:  # what espeak-ng writes to a pipe: sizes it cannot know
        data = data[:4] + b"\xff\xff\xff\x7f" + data[8:40] + b"\xff\xff\xff\x7f" + data[44:]
    return data


def test_babble_is_voiced_speech_sized_and_frame_aligned() -> None:
    audio = babble("Yes, this is me.", ms_per_char=60)
    assert len(audio) % FRAME_BYTES == 0
    duration_ms = len(audio) / 8
    assert 16 * 60 * 0.8 <= duration_ms <= 16 * 60 * 1.6
    flags = voiced_frames(audio)
    assert sum(flags) / len(flags) > 0.6
    assert audio == babble("Yes, this is me.", ms_per_char=60)  # deterministic per text


async def test_espeak_output_is_resampled_to_8k_ulaw(tmp_path: Path) -> None:
    wav_path = tmp_path / "speech.wav"
    t = np.arange(16000) / 16000
    wav_path.write_bytes(_wav(np.sin(2 * np.pi * 300 * t) * 8000, 16000, streaming_header=True))
    fake = tmp_path / "espeak-ng"
    fake.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"assert sys.argv[1:5] == ['--stdout', '--stdin', '-v', 'en'], sys.argv\n"
        f"assert sys.stdin.read() == 'hello there'\n"  # text as data, never an argument
        f"sys.stdout.buffer.write(open({str(wav_path)!r}, 'rb').read())\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    synth = SpeechSynth(str(fake), ms_per_char=60)
    audio = await synth.render("hello there")
    assert synth.engine == "espeak-ng"
    assert len(audio) == 8000  # one second at 8 kHz, one byte a sample
    speech = speech_from_wav(wav_path.read_bytes())
    pcm = np.frombuffer(speech.pcm, dtype="<i2").astype(np.int16)
    assert audio == pcm_to_ulaw_8k(pcm, speech.sample_rate_hz)


async def test_the_caller_speaks_with_the_packaged_library() -> None:
    synth = SpeechSynth(ESPEAK_AUTO, ms_per_char=60)
    assert synth.engine == "libespeak-ng"
    audio = await synth.render("Yes, this is me.")
    assert len(audio) % FRAME_BYTES == 0
    assert sum(voiced_frames(audio)) > 10
    assert audio != babble("Yes, this is me.", 60)
    assert await synth.render("Yes, this is me.") is audio  # rendered once


async def test_no_espeak_or_a_missing_binary_is_babble() -> None:
    assert SpeechSynth(None, ms_per_char=30).engine == "babble"
    missing = SpeechSynth("/nonexistent/espeak-ng", ms_per_char=30)
    assert missing.engine == "babble"
    assert await missing.render("hello there") == babble("hello there", 30)


async def test_a_broken_espeak_falls_back_to_babble(tmp_path: Path) -> None:
    broken = tmp_path / "espeak-ng"
    broken.write_text("#!/bin/sh\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    audio = await SpeechSynth(str(broken), ms_per_char=30).render("hello there")
    assert audio == babble("hello there", 30)
