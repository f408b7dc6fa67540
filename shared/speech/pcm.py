"""`Speech` (16-bit mono PCM and its rate) and reading it from espeak-ng's piped WAV output."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Speech:
    """Signed 16-bit little-endian mono samples at `sample_rate_hz`."""

    pcm: bytes
    sample_rate_hz: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate_hz


def speech_from_wav(data: bytes) -> Speech:
    """The PCM of a RIFF/WAVE file (8/16/32-bit integer, any channel count, mixed down to
    mono); raises `ValueError`.

    `espeak-ng --stdout` cannot seek back into a pipe, so its header keeps placeholder sizes:
    a `data` chunk that claims more than there is runs to the end of the bytes.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    fmt: tuple[int, int, int, int] | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise ValueError("fmt chunk too short")
            audio_format, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            fmt = (audio_format, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("data chunk before fmt chunk")
            return Speech(_mono_pcm16(body, fmt), fmt[2])
        offset += 8 + size + size % 2
    raise ValueError("no data chunk")


def _mono_pcm16(body: bytes, fmt: tuple[int, int, int, int]) -> bytes:
    audio_format, channels, rate, bits = fmt
    if audio_format not in (1, 0xFFFE) or bits not in (8, 16, 32) or channels < 1 or rate < 1:
        raise ValueError(f"unsupported WAV encoding (format {audio_format}, {bits} bit)")
    width = bits // 8
    usable = len(body) - len(body) % (width * channels)
    if bits == 8:
        samples = (np.frombuffer(body[:usable], dtype=np.uint8).astype(np.float64) - 128) / 128
    else:
        dtype = "<i2" if bits == 16 else "<i4"
        samples = np.frombuffer(body[:usable], dtype=dtype).astype(np.float64) / 2.0 ** (bits - 1)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    clipped = np.clip(np.round(samples * 32768.0), -32768, 32767)
    return clipped.astype("<i2").tobytes()
