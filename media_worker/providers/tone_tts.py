"""`ToneTTSService`: a voice that "speaks" a sine tone as long as the text (tests and demo)."""

from __future__ import annotations

from typing import Any

from media_worker.providers.audio import tone_pcm
from media_worker.providers.pcm_tts import PcmTTSService

DEFAULT_MS_PER_CHAR = 60


class ToneTTSService(PcmTTSService):
    """A tone of `ms_per_char` per character of the (stripped) text, at the pipeline's output
    sample rate; deterministic, instant and dependency-free."""

    provider = "tone"

    def __init__(
        self,
        *,
        ms_per_char: int = DEFAULT_MS_PER_CHAR,
        frequency_hz: float = 440.0,
        amplitude: float = 0.2,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self._ms_per_char = ms_per_char
        self._frequency_hz = frequency_hz
        self._amplitude = amplitude

    def duration_s(self, text: str) -> float:
        """How long `text` sounds."""
        return len(text.strip()) * self._ms_per_char / 1000

    async def synthesize(self, text: str, sample_rate_hz: int) -> bytes:
        return tone_pcm(
            self.duration_s(text),
            sample_rate_hz,
            frequency_hz=self._frequency_hz,
            amplitude=self._amplitude,
        )
