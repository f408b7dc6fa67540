"""Twilio Media Streams wire protocol: the `connected`/`start` handshake and our `mark` message.

Parsing is pure (no I/O) except `read_handshake`, the thin shell that reads a socket.
Every error is about what the far end sent; one tree, rooted in `ValueError`::

    ProtocolError                 anything wrong with the stream's messages
    ├── MalformedMessage          not JSON, or not a JSON object
    ├── UnexpectedEvent           a well-formed message whose `event` is not the expected one
    ├── InvalidField              a required field has the wrong type or value (`.field`)
    │   └── MissingField          ... or is absent
    ├── UnsupportedMediaFormat    anything but audio/x-mulaw, 8000 Hz, mono
    ├── HandshakeTimeout          no `start` within the deadline
    └── HandshakeAborted          the socket closed before `start`
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

SUPPORTED_ENCODING = "audio/x-mulaw"
SAMPLE_RATE_HZ = 8000
CHANNELS = 1


class ProtocolError(ValueError):
    """Root of every error about the messages a Media Stream sent."""


class MalformedMessage(ProtocolError):
    """The message is not JSON, or its JSON is not an object."""


class UnexpectedEvent(ProtocolError):
    """A well-formed message carrying an `event` other than the one the handshake needs."""

    def __init__(self, event: str, expected: str) -> None:
        super().__init__(f"expected a {expected!r} message, got {event!r}")
        self.event = event
        self.expected = expected


class InvalidField(ProtocolError):
    """A required field has the wrong type or value; `field` is its dotted path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


class MissingField(InvalidField):
    """A required field is absent."""

    def __init__(self, field: str) -> None:
        super().__init__(field, "is missing")


class UnsupportedMediaFormat(ProtocolError):
    """The stream's audio is not 8 kHz mono μ-law, the only format we run at."""

    def __init__(self, encoding: str, sample_rate: int, channels: int) -> None:
        super().__init__(
            f"unsupported media format {encoding} {sample_rate} Hz x{channels}; "
            f"only {SUPPORTED_ENCODING} {SAMPLE_RATE_HZ} Hz mono is accepted"
        )
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.channels = channels


class HandshakeTimeout(ProtocolError):
    """No `start` arrived within `timeout_s` of the socket opening."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"no 'start' message within {timeout_s:g} s")
        self.timeout_s = timeout_s


class HandshakeAborted(ProtocolError):
    """The socket closed before a `start` arrived (the call usually ended first)."""


@dataclass(frozen=True)
class StreamStart:
    """What Twilio's `start` message says about the stream, validated."""

    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    # Read-only view; excluded from hashing because mapping proxies are unhashable.
    custom_parameters: Mapping[str, str] = field(hash=False)
    encoding: str = SUPPORTED_ENCODING
    sample_rate: int = SAMPLE_RATE_HZ
    channels: int = CHANNELS


def decode(message: str | bytes) -> dict[str, Any]:
    """The message as a JSON object, or `MalformedMessage`."""
    try:
        decoded = json.loads(message)
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for bad bytes
        raise MalformedMessage(f"not JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise MalformedMessage(f"expected a JSON object, got {type(decoded).__name__}")
    return decoded


# How Twilio (and JSON encoders with default separators) open a `media` message: the event
# comes first. Only a fast path: a message opened otherwise is still parsed and recognized.
_MEDIA_OPENINGS = ('{"event":"media"', '{"event": "media"')


def looks_like_media(message: str | bytes) -> bool:
    """Whether `message` is a `media` message, judged from its opening without parsing it;
    False when unsure (the caller then parses it)."""
    opening = message[:20]
    if isinstance(opening, bytes):
        opening = opening.decode("ascii", "replace")
    return opening.startswith(_MEDIA_OPENINGS)


def event_name(decoded: Mapping[str, Any]) -> str:
    """The message's `event`."""
    return _string(decoded, "event", "event")


def parse_connected(message: str | bytes) -> None:
    """Check a `connected` message (it carries nothing we keep)."""
    decoded = decode(message)
    _expect_event(decoded, "connected")


def parse_start(message: str | bytes) -> StreamStart:
    """The stream a `start` message describes, if its media format is one we accept."""
    decoded = decode(message)
    _expect_event(decoded, "start")
    start = _object(decoded, "start", "start")
    media_format = _object(start, "mediaFormat", "start.mediaFormat")
    encoding = _string(media_format, "encoding", "start.mediaFormat.encoding")
    sample_rate = _integer(media_format, "sampleRate", "start.mediaFormat.sampleRate")
    channels = _integer(media_format, "channels", "start.mediaFormat.channels")
    if (encoding, sample_rate, channels) != (SUPPORTED_ENCODING, SAMPLE_RATE_HZ, CHANNELS):
        raise UnsupportedMediaFormat(encoding, sample_rate, channels)
    return StreamStart(
        stream_sid=_string(start, "streamSid", "start.streamSid"),
        call_sid=_string(start, "callSid", "start.callSid"),
        account_sid=_string(start, "accountSid", "start.accountSid"),
        tracks=_strings(start, "tracks", "start.tracks"),
        custom_parameters=_custom_parameters(start),
        encoding=encoding,
        sample_rate=sample_rate,
        channels=channels,
    )


def parse_mark_name(decoded: Mapping[str, Any]) -> str:
    """The name in a `mark` message Twilio sends back once the audio before it is done."""
    return _string(_object(decoded, "mark", "mark"), "name", "mark.name")


def mark_message(stream_sid: str, name: str) -> str:
    """Our `mark`: Twilio echoes it when the audio sent before it has played or been cleared."""
    return json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


async def read_handshake(connection: ServerConnection, *, timeout_s: float = 2.0) -> StreamStart:
    """Read a new stream's messages up to its `start` (a `connected` may come first)."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await connection.recv()
                decoded = decode(message)
                if event_name(decoded) != "connected":
                    return parse_start(message)
    except TimeoutError as exc:
        raise HandshakeTimeout(timeout_s) from exc
    except ConnectionClosed as exc:
        raise HandshakeAborted(f"socket closed before 'start': {exc}") from exc


def _expect_event(decoded: Mapping[str, Any], expected: str) -> None:
    event = event_name(decoded)
    if event != expected:
        raise UnexpectedEvent(event, expected)


def _require(container: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in container or container[key] is None:
        raise MissingField(path)
    return container[key]


def _object(container: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
    value = _require(container, key, path)
    if not isinstance(value, dict):
        raise InvalidField(path, "must be an object")
    return value


def _string(container: Mapping[str, Any], key: str, path: str) -> str:
    value = _require(container, key, path)
    if not isinstance(value, str) or not value:
        raise InvalidField(path, "must be a non-empty string")
    return value


def _integer(container: Mapping[str, Any], key: str, path: str) -> int:
    value = _require(container, key, path)
    # bool is an int subclass; `true` is not a sample rate.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidField(path, "must be an integer")
    return value


def _strings(container: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    value = _require(container, key, path)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidField(path, "must be a list of strings")
    return tuple(value)


def _custom_parameters(start: Mapping[str, Any]) -> Mapping[str, str]:
    # Twilio sends `{}` when the TwiML has no <Parameter>; tolerate the key's absence too.
    raw = start.get("customParameters") or {}
    if not isinstance(raw, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in raw.items()
    ):
        raise InvalidField("start.customParameters", "must be an object of strings")
    return MappingProxyType(dict(raw))
