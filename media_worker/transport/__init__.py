"""A pipecat transport for Twilio Media Streams over an accepted `websockets` connection."""

from media_worker.transport.connection import StreamEnd, StreamEndReason
from media_worker.transport.frames import PlaybackMarkFrame, PlaybackMarkReachedFrame
from media_worker.transport.output import UTTERANCE_MARK_PREFIX
from media_worker.transport.transport import (
    HangUpOptions,
    TwilioStreamTransport,
    telephony_params,
)

__all__ = [
    "UTTERANCE_MARK_PREFIX",
    "HangUpOptions",
    "PlaybackMarkFrame",
    "PlaybackMarkReachedFrame",
    "StreamEnd",
    "StreamEndReason",
    "TwilioStreamTransport",
    "telephony_params",
]
