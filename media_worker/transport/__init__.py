"""A pipecat transport for Twilio Media Streams over an accepted `websockets` connection."""

from media_worker.transport.call_control import (
    CallControl,
    CallControlError,
    dial_twiml,
    is_machine,
)
from media_worker.transport.connection import StreamEnd, StreamEndReason
from media_worker.transport.frames import PlaybackMarkFrame, PlaybackMarkReachedFrame
from media_worker.transport.output import UTTERANCE_MARK_PREFIX
from media_worker.transport.transport import (
    HangUpOptions,
    TwilioStreamTransport,
    call_control_for,
    telephony_params,
)

__all__ = [
    "UTTERANCE_MARK_PREFIX",
    "CallControl",
    "CallControlError",
    "HangUpOptions",
    "PlaybackMarkFrame",
    "PlaybackMarkReachedFrame",
    "StreamEnd",
    "StreamEndReason",
    "TwilioStreamTransport",
    "call_control_for",
    "dial_twiml",
    "is_machine",
    "telephony_params",
]
