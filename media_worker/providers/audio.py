"""16-bit mono PCM helpers for the offline providers: tones, WAV parsing, numpy resampling."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from shared.speech.pcm import speech_from_wav

_INT16_MAX = 32767
_FADE_S = 0.005
_LOWPASS_TAPS = 63


@dataclass(frozen=True)
class WavAudio:
    """PCM frames from a WAV container, as 16-bit little-endian mono at `sample_rate_hz`."""

    pcm: bytes
    sample_rate_hz: int


class WavFormatError(ValueError):
    """The bytes are not a PCM WAV this module can read."""


def tone_pcm(
    duration_s: float, sample_rate_hz: int, *, frequency_hz: float = 440.0, amplitude: float = 0.2
) -> bytes:
    """A sine tone of `duration_s` with 5 ms fades (no clicks), as 16-bit mono PCM."""
    count = max(0, round(duration_s * sample_rate_hz))
    t = np.arange(count, dtype=np.float64) / sample_rate_hz
    wave = amplitude * np.sin(2.0 * np.pi * frequency_hz * t)
    fade = min(count // 2, round(_FADE_S * sample_rate_hz))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
        wave[:fade] *= ramp
        wave[count - fade :] *= ramp[::-1]
    return _to_pcm16(wave)


def pcm_chunks(pcm: bytes, chunk_bytes: int) -> Iterator[bytes]:
    """`pcm` cut into pieces of `chunk_bytes` (rounded down to whole samples, at least one)."""
    size = max(2, chunk_bytes - chunk_bytes % 2)
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]


def resample_pcm(pcm: bytes, from_hz: int, to_hz: int) -> bytes:
    """16-bit mono PCM from `from_hz` to `to_hz`: low-pass first when downsampling (windowed
    sinc), then linear interpolation."""
    if from_hz == to_hz or not pcm:
        return pcm
    return _to_pcm16(resample(pcm16_to_float(pcm), from_hz, to_hz))


def resample(samples: NDArray[np.float64], from_hz: int, to_hz: int) -> NDArray[np.float64]:
    """Float samples from `from_hz` to `to_hz` (see `resample_pcm`)."""
    if from_hz == to_hz or samples.size == 0:
        return samples
    if to_hz < from_hz:
        samples = _lowpass(samples, cutoff=0.45 * to_hz / from_hz)
    count = round(samples.size * to_hz / from_hz)
    positions = np.arange(count, dtype=np.float64) * (from_hz / to_hz)
    return np.interp(positions, np.arange(samples.size, dtype=np.float64), samples)


def pcm16_to_float(pcm: bytes) -> NDArray[np.float64]:
    """16-bit little-endian PCM to floats in [-1, 1)."""
    return np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(np.float64) / 32768.0


def parse_wav(data: bytes) -> WavAudio:
    """The PCM of a RIFF/WAVE file, mixed down to 16-bit mono (`shared.speech.pcm` reads it)."""
    try:
        speech = speech_from_wav(data)
    except ValueError as exc:
        raise WavFormatError(str(exc)) from exc
    return WavAudio(pcm=speech.pcm, sample_rate_hz=speech.sample_rate_hz)


def _lowpass(samples: NDArray[np.float64], cutoff: float) -> NDArray[np.float64]:
    """Windowed-sinc FIR; `cutoff` is a fraction of the sample rate (< 0.5)."""
    n = np.arange(_LOWPASS_TAPS, dtype=np.float64) - (_LOWPASS_TAPS - 1) / 2
    taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(_LOWPASS_TAPS)
    taps /= taps.sum()
    delay = (_LOWPASS_TAPS - 1) // 2
    return np.convolve(samples, taps, mode="full")[delay : delay + samples.size]


def _to_pcm16(samples: NDArray[np.float64]) -> bytes:
    clipped = np.clip(np.round(samples * 32768.0), -32768, _INT16_MAX)
    return clipped.astype("<i2").tobytes()
