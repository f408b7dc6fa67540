"""Pipeline frames for Twilio's playback marks: asking for one, and hearing it came back."""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.frames.frames import DataFrame, SystemFrame


@dataclass
class PlaybackMarkFrame(DataFrame):
    """Ask Twilio to report `mark_name` once the audio queued before this frame has played.

    It travels in order with the output audio and is sent as a Twilio `mark` right after
    the audio ahead of it, so an interruption that drops that audio drops the mark too.
    (Not `name`: every pipecat frame has one already, its own.)
    """

    mark_name: str


@dataclass
class PlaybackMarkReachedFrame(SystemFrame):
    """Twilio echoed `mark_name`: the audio sent before it has played, or a `clear` dropped it.

    A system frame so an interruption cannot discard the news; pushed downstream by the input.
    """

    mark_name: str
