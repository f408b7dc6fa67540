"""The caller's audio: G.711 μ-law codec, resampling, WAV parsing, espeak-ng speech or a
speech-like fallback, and the voiced-frame test. numpy only (`audioop` is deprecated)."""

from __future__ import annotations

import zlib

import numpy as np
import structlog
from numpy.typing import NDArray

from shared.speech.errors import EspeakUnavailable, SynthesisError
from shared.speech.espeak import EspeakEngine, EspeakOptions, find_engine

log = structlog.get_logger(__name__)

SAMPLE_RATE_HZ = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE_HZ * FRAME_MS // 1000  # one byte per μ-law sample
BYTES_PER_MS = SAMPLE_RATE_HZ // 1000
SILENCE_FRAME = b"\xff" * FRAME_BYTES  # μ-law 0xFF is +0
VOICED_RMS = 200.0  # on the int16 scale: about -44 dBFS; comfort noise stays below
ESPEAK_TIMEOUT_S = 10.0
ESPEAK_AUTO = "auto"  # `SpeechSynth`: libespeak-ng, else the espeak-ng binary on PATH

_BIAS = 0x84
_BIAS_14 = _BIAS >> 2
_CLIP_14 = 8159
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def _decode_table() -> NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


_DECODE = _decode_table()


def ulaw_decode(data: bytes) -> NDArray[np.int16]:
    """μ-law bytes to 16-bit linear samples."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def ulaw_encode(pcm: NDArray[np.int16]) -> bytes:
    """16-bit linear samples to μ-law bytes: the reference G.711 encoder (14-bit magnitude,
    bias 33, clip 8159), byte-for-byte what `audioop.lin2ulaw` produced."""
    x = pcm.astype(np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(x), _CLIP_14) + _BIAS_14
    segment = np.searchsorted(_SEGMENT_ENDS, magnitude, side="left")
    code = (segment << 4) | ((magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return bytes((code ^ mask).astype(np.uint8).tobytes())


def resample(pcm: NDArray[np.float64], src_hz: int, dst_hz: int) -> NDArray[np.float64]:
    """Resample with a windowed-sinc low-pass (when going down) and linear interpolation."""
    if src_hz == dst_hz or pcm.size == 0:
        return pcm
    signal = pcm
    if dst_hz < src_hz:
        cutoff = 0.45 * dst_hz / src_hz  # cycles per source sample, just under the new Nyquist
        taps = np.arange(63) - 31
        kernel = 2 * cutoff * np.sinc(2 * cutoff * taps) * np.hamming(63)
        signal = np.convolve(pcm, kernel / kernel.sum(), mode="same")
    count = int(round(pcm.size * dst_hz / src_hz))
    positions = np.arange(count) * (src_hz / dst_hz)
    return np.asarray(np.interp(positions, np.arange(pcm.size), signal), dtype=np.float64)


def pcm_to_ulaw_8k(pcm: NDArray[np.int16], rate_hz: int) -> bytes:
    """Any-rate PCM to whole 20 ms frames of 8 kHz μ-law (zero-padded at the end)."""
    down = resample(pcm.astype(np.float64), rate_hz, SAMPLE_RATE_HZ)
    down = np.pad(down, (0, (-down.size) % FRAME_BYTES))
    return ulaw_encode(np.clip(np.round(down), -32768, 32767).astype(np.int16))


def voiced_frames(data: bytes) -> list[bool]:
    """For each whole 20 ms frame of μ-law: does it carry sound (RMS above `VOICED_RMS`)?"""
    usable = len(data) - len(data) % FRAME_BYTES
    if usable == 0:
        return []
    frames = ulaw_decode(data[:usable]).astype(np.float64).reshape(-1, FRAME_BYTES)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    return [bool(v) for v in rms > VOICED_RMS]


def is_voiced(frame: bytes) -> bool:
    return any(voiced_frames(frame))


# Vowel formants (F1, F2, F3) in Hz: a, e, i, o, u.
_VOWELS = (
    (730, 1090, 2440),
    (530, 1840, 2480),
    (270, 2290, 3010),
    (570, 840, 2410),
    (300, 870, 2240),
)


def _syllable(
    duration_ms: float, formants: tuple[int, int, int], f0_hz: float
) -> NDArray[np.float64]:
    n = max(int(duration_ms * BYTES_PER_MS), FRAME_BYTES)
    t = np.arange(n) / SAMPLE_RATE_HZ
    pitch = f0_hz * (1.0 + 0.08 * np.sin(np.pi * t / t[-1]))  # a small rise and fall
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE_HZ
    harmonics = np.arange(1, int(3600 / f0_hz) + 1)
    weights = (
        sum(
            np.exp(-((((harmonics * f0_hz) - f) / 90.0) ** 2)) / (i + 1)
            for i, f in enumerate(formants)
        )
        + 0.04 / harmonics
    )
    voice = (weights[:, None] * np.sin(harmonics[:, None] * phase[None, :])).sum(axis=0)
    envelope = np.sin(np.pi * np.arange(n) / n) ** 0.6
    return np.asarray(voice * envelope, dtype=np.float64)


def babble(text: str, ms_per_char: int) -> bytes:
    """Speech-like audio (voiced vowels, syllable rhythm, word gaps) about `ms_per_char`
    per character: what the caller says when espeak-ng is not installed."""
    rng = np.random.default_rng(zlib.crc32(text.encode()))
    pieces: list[NDArray[np.float64]] = []
    for word in text.split() or [text]:
        word_ms = max(len(word), 2) * ms_per_char
        syllables = max(1, round(len(word) / 3))
        for _ in range(syllables):
            vowel = _VOWELS[int(rng.integers(len(_VOWELS)))]
            pieces.append(_syllable(word_ms / syllables, vowel, float(rng.uniform(105, 140))))
        pieces.append(np.zeros(int(ms_per_char * BYTES_PER_MS)))
    pcm = np.concatenate(pieces)
    pcm = pcm / max(float(np.max(np.abs(pcm))), 1e-9) * 12000.0
    return pcm_to_ulaw_8k(pcm.astype(np.int16), SAMPLE_RATE_HZ)


def cut_speech(text: str, audio: bytes, fraction: float) -> tuple[str, bytes]:
    """The first `fraction` of an utterance: its words and its whole frames (hang-ups)."""
    if fraction >= 1.0:
        return text, audio
    frames = max(1, int(len(audio) // FRAME_BYTES * fraction))
    words = text.split()
    return " ".join(words[: max(1, int(len(words) * fraction))]), audio[: frames * FRAME_BYTES]


def beep(duration_ms: int, frequency_hz: float = 1000.0) -> bytes:
    """A voicemail tone."""
    t = np.arange(duration_ms * BYTES_PER_MS) / SAMPLE_RATE_HZ
    return pcm_to_ulaw_8k(
        (np.sin(2 * np.pi * frequency_hz * t) * 8000).astype(np.int16), SAMPLE_RATE_HZ
    )


class SpeechSynth:
    """Renders the caller's lines once each: espeak-ng when available, else `babble`.

    `espeak` is None for babble only, `ESPEAK_AUTO` for libespeak-ng (the espeakng-loader
    package) else the `espeak-ng` binary on PATH, or the path of an espeak-ng binary.
    """

    def __init__(
        self,
        espeak: str | None,
        ms_per_char: int,
        voice: str = "en",
        words_per_minute: int = 175,
    ) -> None:
        self.ms_per_char = ms_per_char
        self._options = EspeakOptions(
            voice=voice, words_per_minute=words_per_minute, timeout_s=ESPEAK_TIMEOUT_S
        )
        self._espeak: EspeakEngine | None = None
        self._cache: dict[str, bytes] = {}
        if espeak is not None:
            try:
                self._espeak = find_engine(None if espeak == ESPEAK_AUTO else espeak)
            except EspeakUnavailable as exc:
                log.warning("espeak_unavailable_using_babble", error=str(exc))

    @property
    def engine(self) -> str:
        return self._espeak.name if self._espeak is not None else "babble"

    async def render(self, text: str) -> bytes:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        audio = b""
        if self._espeak is not None:
            try:
                speech = await self._espeak.speak(text, self._options)
                pcm = np.frombuffer(speech.pcm, dtype="<i2")
                audio = pcm_to_ulaw_8k(pcm.astype(np.int16), speech.sample_rate_hz)
            except SynthesisError as exc:
                log.warning("espeak_failed_using_babble", error=str(exc))
        if not audio:
            audio = babble(text, self.ms_per_char)
        if len(self._cache) < 512:
            self._cache[text] = audio
        return audio
