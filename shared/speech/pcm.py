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
    """A 16-bit PCM RIFF/WAVE file as `Speech` (channels mixed down); raises `ValueError`.

    `espeak-ng --stdout` cannot seek back into a pipe, so its header keeps placeholder sizes:
    a `data` chunk that claims more than there is runs to the end of the bytes.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    channels = rate = 0
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise ValueError("fmt chunk too short")
            audio_format, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if audio_format != 1 or bits != 16 or channels < 1 or rate < 1:
                raise ValueError(f"not 16-bit PCM (format {audio_format}, {bits} bit)")
        elif chunk_id == b"data":
            if not rate:
                raise ValueError("data chunk before fmt chunk")
            usable = len(body) - len(body) % (2 * channels)
            samples = np.frombuffer(body[:usable], dtype="<i2")
            if channels > 1:
                samples = samples.reshape(-1, channels).mean(axis=1).round().astype("<i2")
            return Speech(samples.tobytes(), rate)
        offset += 8 + size + size % 2
    raise ValueError("no data chunk")
