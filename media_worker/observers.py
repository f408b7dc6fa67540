"""Pipeline observers of a call: per-turn response latency into the call's record."""

from __future__ import annotations

import time
from collections.abc import Callable

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.observers.user_bot_latency_observer import UserBotLatencyObserver
from pipecat.processors.frame_processor import FrameDirection

from media_worker.record import CallRecord


class TurnLatencyObserver(UserBotLatencyObserver):
    """Writes each turn's latency (the customer stopped speaking -> the first bot audio) to
    `record.add_turn_latency_ms`.

    With a VAD in the pipeline this is pipecat's own measurement (`on_latency_measured`: from
    the VAD's stop, less its `stop_secs`, to `BotStartedSpeakingFrame`). Without one (the `sim`
    STT, which ends the turn the moment the customer's words end) pipecat measures nothing, so
    the turn is timed from its `UserStoppedSpeakingFrame` instead. The greeting is not a turn.
    `time_source` is injectable, so tests never wait out what they measure.
    """

    def __init__(self, record: CallRecord, *, time_source: Callable[[], float] = time.time):
        super().__init__(time_source=time_source)
        self._record = record
        self._clock = time_source
        self._vad_stop_seen = False
        self._turn_ended_at: float | None = None
        self.add_event_handler("on_latency_measured", self._on_latency_measured)

    async def _on_latency_measured(self, _observer: object, latency_s: float) -> None:
        self._record.add_turn_latency_ms(max(0.0, latency_s * 1000))

    async def on_push_frame(self, data: FramePushed) -> None:
        await super().on_push_frame(data)
        if data.direction != FrameDirection.DOWNSTREAM:
            return
        frame = data.frame
        if isinstance(frame, (VADUserStartedSpeakingFrame, UserStartedSpeakingFrame)):
            self._turn_ended_at = None
            if isinstance(frame, VADUserStartedSpeakingFrame):
                self._vad_stop_seen = False
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._vad_stop_seen = True
        elif isinstance(frame, UserStoppedSpeakingFrame) and not self._vad_stop_seen:
            self._turn_ended_at = self._clock()
        elif isinstance(frame, BotStartedSpeakingFrame):
            ended_at, self._turn_ended_at = self._turn_ended_at, None
            self._vad_stop_seen = False
            if ended_at is not None:
                self._record.add_turn_latency_ms(max(0.0, (self._clock() - ended_at) * 1000))
