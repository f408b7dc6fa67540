"""The two pipeline processors around the TTS switcher that carry out TTS failover.

`TTSFailoverInjector` sits just before the `ServiceSwitcher`: at the call's start it asks
which voice to start on (before it lets the StartFrame on, so no text can reach the switcher
first), and later it carries the switch and the re-spoken text into the switcher
in pipeline order. `TTSDropGate` sits just after it and removes what the health monitor tagged
as part of a failed utterance, so neither the customer, the transcript nor the LLM context
gets it; the re-spoken text arrives once, from the voice that spoke it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pipecat.frames.frames import (
    Frame,
    ManuallySwitchServiceFrame,
    StartFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from media_worker.tts_health_monitor import is_dropped

StartHook = Callable[[], Awaitable[FrameProcessor | None]]


class TTSFailoverInjector(FrameProcessor):
    """Asks `on_start` for the service to start on (None: the switcher's first) and switches to
    it right behind the StartFrame; `switch_to` and `speak` queue frames into the switcher."""

    def __init__(self, on_start: StartHook | None = None) -> None:
        super().__init__(name="TTSFailoverInjector")
        self._on_start = on_start

    def set_start_hook(self, on_start: StartHook) -> None:
        """Set the start hook (before the pipeline starts)."""
        self._on_start = on_start

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, StartFrame) or self._on_start is None:
            await self.push_frame(frame, direction)
            return
        # Decided before the StartFrame goes on, so a started pipeline has made its choice
        # (and holds the probe claim, if it won one); the hook bounds its own Redis wait.
        service = await self._on_start()
        await self.push_frame(frame, direction)
        if service is not None:
            await self.push_frame(ManuallySwitchServiceFrame(service=service))

    async def switch_to(self, service: FrameProcessor) -> None:
        await self.queue_frame(ManuallySwitchServiceFrame(service=service))

    async def speak(self, text: str) -> None:
        await self.queue_frame(TTSSpeakFrame(text))


class TTSDropGate(FrameProcessor):
    """Drops the frames of failed utterances (tagged by `TTSFrameMonitor`)."""

    def __init__(self) -> None:
        super().__init__(name="TTSDropGate", enable_direct_mode=True)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not is_dropped(frame):
            await self.push_frame(frame, direction)
