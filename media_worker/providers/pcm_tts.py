"""`PcmTTSService`: the base of the offline voices, which synthesize a whole utterance as PCM."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncGenerator
from typing import Any

from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
from pipecat.services.settings import TTSSettings
from pipecat.services.tts_service import TTSService

from media_worker.providers.audio import pcm_chunks
from media_worker.providers.errors import SynthesisFailed


class PcmTTSService(TTSService):
    """A TTS that turns one text into one PCM buffer (`synthesize`) and streams it as
    `TTSAudioRawFrame`s of pipecat's `chunk_size` (0.5 s) at the pipeline's output rate.
    Each frame crosses every processor and observer after the voice, and these voices hand
    over a whole utterance at once, so 20-100 ms frames made bursts of hundreds of hops that
    held up the event loop for the process's other calls; the output transport cuts the
    audio into Twilio-sized messages in any case.

    Like pipecat's HTTP voices it leaves the audio context to the base class
    (`push_start_frame`, `push_stop_frames`), so the frames downstream are the usual
    `TTSStartedFrame`, audio chunks, `TTSStoppedFrame`. A `SynthesisFailed` becomes an
    `ErrorFrame` carrying its category, with no audio: what a failing provider looks like.

    `provider` is the template's name for the voice (`tone`, `espeak`, ...).
    """

    provider: str = "pcm"

    def __init__(self, *, voice: str | None = None, **kwargs: Any):
        kwargs.setdefault("push_start_frame", True)
        kwargs.setdefault("push_stop_frames", True)
        super().__init__(settings=TTSSettings(model=None, voice=voice, language=None), **kwargs)

    @property
    def voice(self) -> str | None:
        voice = self._settings.voice
        return voice if isinstance(voice, str) else None

    def can_generate_metrics(self) -> bool:
        return True

    @abstractmethod
    async def synthesize(self, text: str, sample_rate_hz: int) -> bytes:
        """16-bit mono PCM of `text` at `sample_rate_hz`; raises `SynthesisFailed`."""

    async def tts_process_generator(
        self, context_id: str, generator: AsyncGenerator[Frame | None, None]
    ) -> None:
        await super().tts_process_generator(context_id, generator)
        # These voices answer inline, failed or not, so the context can close at the end of
        # the turn. pipecat only does that after audio, and otherwise waits out
        # `stop_frame_timeout_s` (3 s) of silence first: dead air before a failed sentence
        # can be spoken again.
        self._is_yielding_frames_synchronously = True

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame | None, None]:
        """Synthesize `text` and yield its audio in chunks (or one `ErrorFrame`)."""
        await self.start_tts_usage_metrics(text)
        try:
            pcm = await self.synthesize(text, self.sample_rate)
        except SynthesisFailed as exc:
            yield ErrorFrame(error=f"{self.name}: {exc}", category=exc.category)
            return
        for chunk in pcm_chunks(pcm, self.chunk_size):
            await self.stop_ttfb_metrics()
            yield TTSAudioRawFrame(chunk, self.sample_rate, 1, context_id=context_id)
