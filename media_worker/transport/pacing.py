"""Real-time pacing of outbound audio, so Twilio's playout buffer never holds more than a lead."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class PlayoutPacer:
    """Tracks when the audio sent so far finishes playing at Twilio and holds sends back.

    Sending faster than real time would let Twilio buffer seconds of speech that pipecat
    already counts as spoken (bot-speaking events, interruption timing); sending exactly at
    real time would underrun on the first network hiccup. A small fixed lead is the middle.
    """

    def __init__(
        self,
        lead_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if lead_s < 0:
            raise ValueError(f"lead_s must be >= 0, got {lead_s}")
        self._lead_s = lead_s
        self._clock = clock
        self._sleep = sleep
        self._playout_end_s = 0.0

    async def sent(self, duration_s: float) -> None:
        """Account for `duration_s` of audio just sent; sleep while we are beyond the lead."""
        now_s = self._clock()
        # An idle gap lets the buffer run dry: new audio starts playing now, not back then.
        self._playout_end_s = max(self._playout_end_s, now_s) + duration_s
        ahead_s = self._playout_end_s - now_s - self._lead_s
        if ahead_s > 0:
            await self._sleep(ahead_s)

    async def drain(self) -> None:
        """Wait until the audio sent so far has played at Twilio (at most the lead)."""
        remaining_s = self._playout_end_s - self._clock()
        if remaining_s > 0:
            await self._sleep(remaining_s)

    def reset(self) -> None:
        """Twilio's buffer was cleared: nothing is queued there any more."""
        self._playout_end_s = 0.0
