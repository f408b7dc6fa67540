"""`EspeakTTSService`: the offline speaking voice, espeak-ng through `shared.speech.espeak`."""

from __future__ import annotations

import asyncio
from typing import Any

from pipecat.utils.errors import ErrorCategory

from media_worker.providers.audio import resample_pcm
from media_worker.providers.errors import ProviderUnavailable, SynthesisFailed
from media_worker.providers.pcm_tts import PcmTTSService
from shared.speech.errors import EspeakUnavailable, SynthesisError
from shared.speech.espeak import ESPEAK_BINARY, EspeakOptions, find_engine

__all__ = ["ESPEAK_BINARY", "EspeakTTSService"]


class EspeakTTSService(PcmTTSService):
    """Speaks with espeak-ng and resamples with numpy to the pipeline's output rate.

    The engine is chosen at construction (`shared.speech.espeak.find_engine`): libespeak-ng
    from the espeakng-loader package, else the `espeak-ng` binary on PATH, or exactly the
    `binary` given. With neither this raises `ProviderUnavailable` rather than failing on the
    first sentence. Synthesis never blocks the event loop (a worker thread or a subprocess).

    A sentence that outlives `synth_timeout_s` is a `SynthesisFailed`. An interruption
    cancels the request: the binary is killed; the library's synthesis is told to stop and
    does so at its next 100 ms chunk of audio, which is dropped.
    """

    provider = "espeak"

    def __init__(
        self,
        *,
        voice: str = "en",
        binary: str | None = None,
        words_per_minute: int = 165,
        synth_timeout_s: float = 10.0,
        **kwargs: Any,
    ):
        try:
            self._engine = find_engine(binary)
        except EspeakUnavailable as exc:
            raise ProviderUnavailable(
                self.provider, f"the espeak TTS cannot speak: {exc}; or choose another voice"
            ) from exc
        super().__init__(voice=voice, **kwargs)
        self._options = EspeakOptions(
            voice=voice, words_per_minute=words_per_minute, timeout_s=synth_timeout_s
        )

    @property
    def engine(self) -> str:
        """`libespeak-ng` or `espeak-ng` (the binary)."""
        return self._engine.name

    async def synthesize(self, text: str, sample_rate_hz: int) -> bytes:
        try:
            speech = await self._engine.speak(text, self._options)
        except SynthesisError as exc:
            raise SynthesisFailed(self.provider, str(exc), ErrorCategory.SERVER) from exc
        return await asyncio.to_thread(
            resample_pcm, speech.pcm, speech.sample_rate_hz, sample_rate_hz
        )
