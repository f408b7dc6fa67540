"""espeak-ng speech: the libespeak-ng binding (rate, empty text, threads, aborts), the WAV
reader for the binary, and how an engine is chosen."""

from __future__ import annotations

import asyncio
import io
import stat
import sys
import threading
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from shared.speech import libespeak
from shared.speech.errors import (
    EspeakUnavailable,
    SynthesisAborted,
    SynthesisError,
    SynthesisTimeout,
)
from shared.speech.espeak import (
    BinaryEngine,
    EspeakOptions,
    LibraryEngine,
    find_engine,
)
from shared.speech.libespeak import LibEspeak, open_library, shared_library
from shared.speech.pcm import Speech, speech_from_wav

SENTENCE = "Your order is confirmed."


@pytest.fixture
def library() -> LibEspeak:
    return shared_library()


def samples(speech: Speech) -> np.ndarray:
    return np.frombuffer(speech.pcm, dtype="<i2").astype(np.float64) / 32768.0


class AbortAfterChecks(threading.Event):
    """An abort flag that reads as set from its `checks_clear + 1`-th look on: a stand-in for
    a caller cancelled while the synthesis runs, without depending on timing."""

    def __init__(self, checks_clear: int) -> None:
        super().__init__()
        self.checks_clear = checks_clear

    def is_set(self) -> bool:
        self.checks_clear -= 1
        return self.checks_clear < 0


def test_a_sentence_is_audible_pcm_at_the_reported_rate(library: LibEspeak) -> None:
    speech = library.synthesize(SENTENCE, voice="en", words_per_minute=165)
    assert library.sample_rate_hz == speech.sample_rate_hz == 22050
    assert len(speech.pcm) % 2 == 0
    assert 0.8 < speech.duration_s < 5.0
    audio = samples(speech)
    assert np.abs(audio).max() > 0.1
    assert np.sqrt(np.mean(audio**2)) > 0.01


def test_rate_sets_the_pace(library: LibEspeak) -> None:
    slow = library.synthesize(SENTENCE, words_per_minute=100)
    fast = library.synthesize(SENTENCE, words_per_minute=300)
    assert slow.duration_s > 1.8 * fast.duration_s


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_no_audio(library: LibEspeak, text: str) -> None:
    assert library.synthesize(text) == Speech(b"", 22050)


def test_markup_and_nul_are_spoken_as_text(library: LibEspeak) -> None:
    """SSML is off: tags are characters, not commands; a NUL does not cut the text short."""
    tagged = library.synthesize('<speak><break time="5s"/>yes</speak>')
    assert tagged.duration_s < 5.0
    whole = library.synthesize("one two\0three four five six")
    assert whole.duration_s > library.synthesize("one two").duration_s * 1.8


def test_an_unknown_voice_fails_that_synthesis_only(library: LibEspeak) -> None:
    with pytest.raises(SynthesisError, match="no voice 'xx-nonexistent'"):
        library.synthesize(SENTENCE, voice="xx-nonexistent")
    assert library.synthesize(SENTENCE).duration_s > 0.8


def test_threads_get_their_own_whole_utterances(library: LibEspeak) -> None:
    """Many threads at once: each result is its own text at its own rate, as when alone."""
    jobs = [
        ("Yes.", 175),
        ("Please confirm my order for tomorrow morning.", 175),
        (SENTENCE, 100),
        (SENTENCE, 300),
        ("One two three four five six seven eight nine ten.", 200),
        ("No thank you.", 150),
    ] * 2
    alone = [library.synthesize(t, words_per_minute=w).duration_s for t, w in jobs]
    start = threading.Barrier(len(jobs))

    def speak(job: tuple[str, int]) -> Speech:
        start.wait()
        return library.synthesize(job[0], words_per_minute=job[1])

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        together = list(pool.map(speak, jobs))
    for speech, reference in zip(together, alone, strict=True):
        # espeak adds a little noise and jitter, so lengths match closely, not exactly.
        assert speech.duration_s == pytest.approx(reference, rel=0.05)
        assert np.abs(samples(speech)).max() > 0.1


def test_an_abort_stops_the_synthesis_and_the_library_recovers(library: LibEspeak) -> None:
    full = library.synthesize(SENTENCE)
    with pytest.raises(SynthesisAborted, match="before it started"):
        library.synthesize(SENTENCE, abort=AbortAfterChecks(0))
    # Clear before taking the lock, set at the first chunk of audio.
    with pytest.raises(SynthesisAborted, match="while speaking"):
        library.synthesize(SENTENCE, abort=AbortAfterChecks(1))
    again = library.synthesize(SENTENCE)
    assert again.duration_s == pytest.approx(full.duration_s, rel=0.05)


def test_a_library_that_is_not_there_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(EspeakUnavailable, match="cannot load"):
        open_library(str(tmp_path / "libespeak-ng.so"), str(tmp_path))


def test_shared_library_is_loaded_once(library: LibEspeak) -> None:
    assert shared_library() is library


async def test_the_library_engine_speaks_off_the_event_loop() -> None:
    engine = find_engine()
    assert isinstance(engine, LibraryEngine) and engine.name == "libespeak-ng"
    speech = await engine.speak(SENTENCE, EspeakOptions(words_per_minute=165))
    assert speech.sample_rate_hz == 22050 and speech.duration_s > 0.8


async def test_a_cancelled_or_late_synthesis_leaves_the_library_usable() -> None:
    engine = find_engine()
    task = asyncio.create_task(engine.speak(SENTENCE * 20, EspeakOptions()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(SynthesisTimeout, match="longer than 0 s"):
        await engine.speak(SENTENCE * 20, EspeakOptions(timeout_s=0))
    speech = await engine.speak(SENTENCE, EspeakOptions())
    assert speech.duration_s > 0.8


def wav(pcm: np.ndarray, rate: int, channels: int = 1, *, streaming: bool = False) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as writer:
        writer.setnchannels(channels)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(pcm.astype("<i2").tobytes())
    data = buffer.getvalue()
    if streaming:  # what espeak-ng --stdout writes into a pipe: sizes it cannot know
        data = data[:4] + b"\xff\xff\xff\x7f" + data[8:40] + b"\xff\xff\xff\x7f" + data[44:]
    return data


def test_the_binary_s_piped_wav_is_read() -> None:
    mono = (np.sin(np.arange(2205) / 7) * 9000).astype(np.int16)
    speech = speech_from_wav(wav(mono, 22050, streaming=True))
    assert speech == Speech(mono.astype("<i2").tobytes(), 22050)
    assert speech_from_wav(wav(np.repeat(mono, 2), 22050, channels=2)) == speech
    with pytest.raises(ValueError, match="RIFF"):
        speech_from_wav(b"not a wav")


FAKE_ESPEAK = """#!{python}
import io, sys, wave
text = sys.stdin.read()
with wave.open(buffer := io.BytesIO(), "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(22050)
    w.writeframes(b"\\x10\\x00" * (len(text) * 441))
sys.stdout.buffer.write(buffer.getvalue())
"""


@pytest.fixture
def no_library(monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable() -> LibEspeak:
        raise EspeakUnavailable("libespeak-ng", "the espeakng-loader package is missing")

    monkeypatch.setattr(libespeak, "shared_library", unavailable)


@pytest.mark.usefixtures("no_library")
async def test_without_the_library_the_binary_on_path_speaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "espeak-ng"
    fake.write_text(FAKE_ESPEAK.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    engine = find_engine()
    assert isinstance(engine, BinaryEngine) and engine.name == "espeak-ng"
    speech = await engine.speak("hi; rm -rf /", EspeakOptions())
    assert speech.duration_s == pytest.approx(len("hi; rm -rf /") * 0.020)


@pytest.mark.usefixtures("no_library")
def test_without_library_or_binary_there_is_no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EspeakUnavailable, match="pip install espeakng-loader"):
        find_engine()


def test_a_binary_asked_for_is_used_or_unavailable() -> None:
    assert isinstance(find_engine(sys.executable), BinaryEngine)
    with pytest.raises(EspeakUnavailable, match="not on PATH"):
        find_engine("/nonexistent/espeak-ng")
