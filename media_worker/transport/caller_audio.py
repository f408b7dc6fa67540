"""Audio chunks in the pipeline: the caller's frame the input pushes, and the sinks where
audio stops once nothing further along needs it.

Twilio sends 50 audio chunks a second per call, and each hop of a frame through pipecat costs
a queue, a task switch, an observer call and a log line's string (`FrameProcessor` formats
`f"Pushing {frame} ..."` for a TRACE line whether or not TRACE is on). So the caller's chunks
are frames that print as their name, and they stop at their last listener (the STT drops them
itself when it is the last) instead of running through the LLM, the voices and the output.
Likewise the bot's audio stops right after the output transport has sent it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


@dataclass
class CallerAudioFrame(InputAudioRawFrame):
    """A chunk of the caller's audio: an `InputAudioRawFrame` whose `str` is its name (as every
    other frame's is), not pts, size and rates formatted at each hop."""

    def __str__(self) -> str:
        return self.name


class _AudioSink(FrameProcessor):
    """Drops `dropped` frames going downstream; passes the rest."""

    dropped: type[Frame]

    def __init__(self) -> None:
        super().__init__(name=type(self).__name__, enable_direct_mode=True)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, self.dropped) and direction is FrameDirection.DOWNSTREAM:
            return
        await self.push_frame(frame, direction)


class CallerAudioSink(_AudioSink):
    """Drops the caller's audio (`InputAudioRawFrame`s going downstream); passes the rest.

    Place it right after the last processor that hears the caller when that is the user
    aggregator (running a VAD or a turn model); an STT that is the last listener drops the
    audio itself (`audio_passthrough=False`).
    """

    dropped = InputAudioRawFrame


class SpokenAudioSink(_AudioSink):
    """Drops the bot's audio (`OutputAudioRawFrame`s going downstream) once the output
    transport has sent it; passes the rest. pipecat's output pushes every sent chunk on "in
    case anyone else needs it"; after it come only the assistant aggregator (which keeps the
    words, not the sound) and the pipeline's sink."""

    dropped = OutputAudioRawFrame
