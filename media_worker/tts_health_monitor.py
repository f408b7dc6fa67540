"""Attributes each TTS frame to the voice that produced it and judges every sentence it spoke.

It hooks each TTS service's own synchronous events (`on_before_push_frame`, `on_error`), so a
frame is judged and tagged in the exact order the service pushes it, before any processor
downstream sees it; a pipecat observer is told later, from another task, which would be too
late to keep a failed sentence out of the transcript. A frame from a processor that is not one
of the call's voices is never attributed (nor counted) to any of them.

Per audio context (TTSStartedFrame ... TTSStoppedFrame, one utterance) it tracks the sentences
announced for synthesis (`AggregatedTextFrame` with `will_be_spoken`). A sentence fails on an
error while it is being synthesized, on no audio within `audio_timeout_s` of its request, or
when its audio is near silence (peak below `silence_peak`) or absent once it should be there:
at its spoken text for voices that push it after the audio (`text_after_audio`), else when the
context ends. From the first failure on, the context's audio and spoken text are tagged to be
dropped (`is_dropped`), and when it ends the failed sentences onward are handed back
(`FailureListener.context_failed`) to be spoken again. Interrupted contexts are forgotten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import structlog
from pipecat.frames.frames import (
    AggregatedTextFrame,
    ErrorFrame,
    Frame,
    InterruptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
)
from pipecat.processors.frame_processor import FrameProcessor

from media_worker.tts_health import FailureReason

log = structlog.get_logger(__name__)

TAG_PROVIDER = "callfleet.tts_provider"
TAG_DROP = "callfleet.tts_drop"

Sleep = Callable[[float], Awaitable[None]]


def provider_of(frame: Frame) -> str | None:
    """The voice (provider name) that produced `frame`, if one of the call's voices did."""
    provider = frame.metadata.get(TAG_PROVIDER)
    return provider if isinstance(provider, str) else None


def is_dropped(frame: Frame) -> bool:
    """Whether `frame` belongs to a failed utterance (kept from the customer and the record)."""
    return bool(frame.metadata.get(TAG_DROP))


class FailureListener(Protocol):
    """Told of verdicts: a failed utterance (once, at its first failed sentence), a sentence
    spoken well, and a failed utterance's end with the texts from its failed sentence on."""

    async def sentence_failed(
        self, provider: str, context_id: str, reason: FailureReason
    ) -> None: ...

    async def sentence_succeeded(self, provider: str) -> None: ...

    async def context_failed(self, provider: str, context_id: str, texts: list[str]) -> None: ...


@dataclass(frozen=True)
class MonitoredVoice:
    """One voice of the call: its provider name, service, and whether it pushes a sentence's
    spoken text after that sentence's audio (pipecat's sentence-level voices do)."""

    provider: str
    service: FrameProcessor
    text_after_audio: bool = True


@dataclass
class _Sentence:
    text: str
    audio_bytes: int = 0
    loud: bool = False
    failure: FailureReason | None = None
    judged: bool = False
    timer: asyncio.Task[None] | None = None


@dataclass
class _Context:
    provider: str
    context_id: str
    sentences: list[_Sentence] = field(default_factory=list)
    failed_at: int | None = None


class TTSFrameMonitor:
    """The per-call TTS health observer: attribution, verdicts and drop tags (see module)."""

    def __init__(
        self,
        voices: list[MonitoredVoice],
        listener: FailureListener,
        *,
        audio_timeout_s: float,
        silence_peak: int,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._voices = {v.provider: v for v in voices}
        self._listener = listener
        self._audio_timeout_s = audio_timeout_s
        self._silence_peak = silence_peak
        self._sleep = sleep
        self._open: dict[str, _Context] = {}
        self._current: dict[str, str] = {}
        self._timers: set[asyncio.Task[None]] = set()

    @property
    def voices(self) -> Mapping[str, MonitoredVoice]:
        return self._voices

    def attach(self) -> None:
        """Register the hooks on every voice's service (once, before the pipeline starts)."""
        for provider, voice in self._voices.items():
            voice.service.add_event_handler("on_before_push_frame", self._push_hook(provider))
            voice.service.add_event_handler("on_error", self._error_hook(provider))

    async def close(self) -> None:
        timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        self._open.clear()

    # --- hooks ---------------------------------------------------------------------------------

    def _push_hook(self, provider: str) -> Callable[[Any, Frame], Awaitable[None]]:
        async def hook(_service: Any, frame: Frame) -> None:
            await self.on_pushed(provider, frame)

        return hook

    def _error_hook(self, provider: str) -> Callable[[Any, ErrorFrame], Awaitable[None]]:
        async def hook(_service: Any, error: ErrorFrame) -> None:
            await self.on_error(provider, error)

        return hook

    async def on_pushed(self, provider: str, frame: Frame) -> None:
        """`provider`'s service is about to push `frame`."""
        if isinstance(frame, InterruptionFrame):
            self._forget(provider)
            return
        if isinstance(frame, TTSTextFrame):
            await self._on_text(provider, frame)
        elif isinstance(frame, AggregatedTextFrame):
            if frame.will_be_spoken and frame.context_id:
                self._on_announce(provider, frame.context_id, frame.text)
        elif isinstance(frame, TTSStartedFrame):
            if frame.context_id:
                self._context(provider, frame.context_id)
        elif isinstance(frame, TTSAudioRawFrame):
            await self._on_audio(provider, frame)
        elif isinstance(frame, TTSStoppedFrame):
            await self._on_stopped(provider, frame)
        else:
            return
        frame.metadata[TAG_PROVIDER] = provider
        context = self._open.get(getattr(frame, "context_id", None) or "")
        if context is not None and context.failed_at is not None:
            if isinstance(frame, (TTSAudioRawFrame, TTSTextFrame)):
                frame.metadata[TAG_DROP] = True

    async def on_error(self, provider: str, error: ErrorFrame) -> None:
        """`provider`'s service reported `error`: it fails the sentence being synthesized."""
        context = self._open.get(self._current.get(provider, ""))
        sentence = _pending(context)
        if context is None or sentence is None:
            # Outside any utterance (e.g. pipecat's own "context completed with no audio"
            # report after the context ended): every request already has its own verdict.
            log.debug("tts_error_outside_utterance", provider=provider, error=error.error)
            return
        await self._fail(context, sentence, FailureReason.ERROR)

    # --- per frame -----------------------------------------------------------------------------

    def _context(self, provider: str, context_id: str) -> _Context:
        context = self._open.get(context_id)
        if context is None:
            context = self._open[context_id] = _Context(provider, context_id)
        self._current[provider] = context_id
        return context

    def _on_announce(self, provider: str, context_id: str, text: str) -> None:
        context = self._context(provider, context_id)
        sentence = _Sentence(text=text)
        context.sentences.append(sentence)
        timer = asyncio.create_task(self._time_out(context, sentence))
        sentence.timer = timer
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)

    async def _time_out(self, context: _Context, sentence: _Sentence) -> None:
        await self._sleep(self._audio_timeout_s)
        sentence.timer = None
        if not sentence.judged and sentence.audio_bytes == 0 and context.context_id in self._open:
            await self._fail(context, sentence, FailureReason.TIMEOUT)

    async def _on_audio(self, provider: str, frame: TTSAudioRawFrame) -> None:
        context_id = frame.context_id or self._current.get(provider, "")
        context = self._open.get(context_id)
        sentence = _pending(context)
        if sentence is None:
            return
        _cancel(sentence)
        sentence.audio_bytes += len(frame.audio)
        if not sentence.loud and _peak(frame.audio) >= self._silence_peak:
            sentence.loud = True

    async def _on_text(self, provider: str, frame: TTSTextFrame) -> None:
        context = self._open.get(frame.context_id or "")
        if context is None:
            return
        sentence = next((s for s in context.sentences if not s.judged), None)
        if sentence is None:
            return
        if self._voices[provider].text_after_audio or sentence.audio_bytes or sentence.failure:
            await self._judge(context, sentence)

    async def _on_stopped(self, provider: str, frame: TTSStoppedFrame) -> None:
        context = self._open.get(frame.context_id or "")
        if context is None:
            return
        for sentence in context.sentences:
            if not sentence.judged:
                await self._judge(context, sentence)
        del self._open[context.context_id]
        if self._current.get(provider) == context.context_id:
            del self._current[provider]
        if context.failed_at is not None:
            texts = [s.text.strip() for s in context.sentences[context.failed_at :]]
            await self._listener.context_failed(
                provider, context.context_id, [t for t in texts if t]
            )

    # --- verdicts ------------------------------------------------------------------------------

    async def _judge(self, context: _Context, sentence: _Sentence) -> None:
        if sentence.failure is not None:
            sentence.judged = True
            return
        if sentence.audio_bytes == 0:
            await self._fail(context, sentence, FailureReason.NO_AUDIO)
        elif not sentence.loud:
            await self._fail(context, sentence, FailureReason.SILENCE)
        else:
            sentence.judged = True
            _cancel(sentence)
            if context.failed_at is None:
                await self._listener.sentence_succeeded(context.provider)

    async def _fail(self, context: _Context, sentence: _Sentence, reason: FailureReason) -> None:
        if sentence.failure is not None:
            return
        sentence.failure = reason
        sentence.judged = True
        _cancel(sentence)
        if context.failed_at is not None:
            return  # one failed utterance counts once
        context.failed_at = context.sentences.index(sentence)
        log.warning("tts_utterance_failed", provider=context.provider, reason=str(reason))
        await self._listener.sentence_failed(context.provider, context.context_id, reason)

    def _forget(self, provider: str) -> None:
        for context_id in [c for c, ctx in self._open.items() if ctx.provider == provider]:
            for sentence in self._open.pop(context_id).sentences:
                _cancel(sentence)
        self._current.pop(provider, None)


def _pending(context: _Context | None) -> _Sentence | None:
    """The sentence being synthesized: the last one announced."""
    if context is None or not context.sentences:
        return None
    return context.sentences[-1]


def _cancel(sentence: _Sentence) -> None:
    timer, sentence.timer = sentence.timer, None
    if timer is not None and timer is not asyncio.current_task():
        timer.cancel()


def _peak(pcm: bytes) -> int:
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    return int(np.abs(samples.astype(np.int32)).max()) if samples.size else 0
