"""The caller's audio in the pipeline: the frame the input pushes, and the sink where it stops.

Twilio sends 50 audio chunks a second per call, and each hop of a frame through pipecat costs
a queue, a task switch, an observer call and a log line's string (`FrameProcessor` formats
`f"Pushing {frame} ..."` for a TRACE line whether or not TRACE is on). So the chunks are
frames that print as their name, and they stop after the last processor that listens to them
instead of running through the LLM, the voices and the output.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


@dataclass
class CallerAudioFrame(InputAudioRawFrame):
    """A chunk of the caller's audio: an `InputAudioRawFrame` whose `str` is its name (as every
    other frame's is), not pts, size and rates formatted at each hop."""

    def __str__(self) -> str:
        return self.name


class CallerAudioSink(FrameProcessor):
    """Drops the caller's audio (`InputAudioRawFrame`s going downstream); passes the rest.

    Place it right after the last processor that hears the caller: the STT, or the user
    aggregator when that runs a VAD or a turn model. Nothing after those uses inbound audio.
    """

    def __init__(self) -> None:
        super().__init__(name="CallerAudioSink")

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and direction is FrameDirection.DOWNSTREAM:
            return
        await self.push_frame(frame, direction)
