"""Twilio Media Streams messages as Twilio sends them, minus `sequenceNumber` and
`streamSid`, which the sending stream stamps on (`connected` carries neither)."""

from __future__ import annotations

from collections.abc import Mapping

from simulator.audio import FRAME_MS

Message = dict[str, object]

CONNECTED: Message = {"event": "connected", "protocol": "Call", "version": "1.0.0"}
MEDIA_FORMAT: Mapping[str, object] = {
    "encoding": "audio/x-mulaw",
    "sampleRate": 8000,
    "channels": 1,
}


def start(
    *, account_sid: str, stream_sid: str, call_sid: str, parameters: Mapping[str, str]
) -> Message:
    return {
        "event": "start",
        "start": {
            "accountSid": account_sid,
            "streamSid": stream_sid,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "customParameters": dict(parameters),
            "mediaFormat": dict(MEDIA_FORMAT),
        },
    }


def media(chunk: int, payload_b64: str) -> Message:
    """Inbound audio chunk `chunk` (from 1); its timestamp is ms since the stream started."""
    return {
        "event": "media",
        "media": {
            "track": "inbound",
            "chunk": str(chunk),
            "timestamp": str((chunk - 1) * FRAME_MS),
            "payload": payload_b64,
        },
    }


def mark(name: str) -> Message:
    return {"event": "mark", "mark": {"name": name}}


def dtmf(digit: str) -> Message:
    return {"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": digit}}


def stop(*, account_sid: str, call_sid: str) -> Message:
    return {"event": "stop", "stop": {"accountSid": account_sid, "callSid": call_sid}}
