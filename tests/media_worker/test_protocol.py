"""The Media Streams handshake parser: good and bad `connected`/`start` messages, and the
socket shell that reads them (in order, out of order, never, or cut short)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from media_worker.protocol import (
    HandshakeAborted,
    HandshakeTimeout,
    InvalidField,
    MalformedMessage,
    MissingField,
    ProtocolError,
    StreamStart,
    UnexpectedEvent,
    UnsupportedMediaFormat,
    decode,
    looks_like_media,
    mark_message,
    parse_connected,
    parse_mark_name,
    parse_start,
    read_handshake,
)

FIXTURE = Path(__file__).parent / "fixtures" / "twilio_media_stream.jsonl"


def recorded(event: str) -> dict[str, Any]:
    """The first message of `event` in the recorded session (a fresh copy to mutate)."""
    for line in FIXTURE.read_text().splitlines():
        message: dict[str, Any] = json.loads(line)
        if message["event"] == event:
            return message
    raise LookupError(event)


def without(message: dict[str, Any], path: str) -> str:
    changed = copy.deepcopy(message)
    *parents, last = path.split(".")
    container = changed
    for key in parents:
        container = container[key]
    del container[last]
    return json.dumps(changed)


def with_value(message: dict[str, Any], path: str, value: object) -> str:
    changed = copy.deepcopy(message)
    *parents, last = path.split(".")
    container = changed
    for key in parents:
        container = container[key]
    container[last] = value
    return json.dumps(changed)


# --- Parsing -------------------------------------------------------------------------------


def test_a_twilio_start_parses_into_the_stream_it_describes() -> None:
    message = recorded("start")
    start = parse_start(json.dumps(message).encode())  # bytes are accepted too

    body = message["start"]
    assert start == StreamStart(
        stream_sid=body["streamSid"],
        call_sid=body["callSid"],
        account_sid=body["accountSid"],
        tracks=("inbound",),
        custom_parameters={"token": body["customParameters"]["token"]},
        encoding="audio/x-mulaw",
        sample_rate=8000,
        channels=1,
    )
    with pytest.raises(TypeError):
        start.custom_parameters["token"] = "forged"  # type: ignore[index]


def test_a_start_without_custom_parameters_has_none() -> None:
    start = parse_start(without(recorded("start"), "start.customParameters"))
    assert dict(start.custom_parameters) == {}


def test_a_twilio_connected_parses_and_anything_else_is_the_wrong_event() -> None:
    parse_connected(json.dumps(recorded("connected")))
    with pytest.raises(UnexpectedEvent) as raised:
        parse_connected(json.dumps(recorded("start")))
    assert (raised.value.event, raised.value.expected) == ("start", "connected")
    with pytest.raises(UnexpectedEvent):
        parse_start(json.dumps(recorded("media")))


@pytest.mark.parametrize(
    "path",
    [
        "event",
        "start",
        "start.streamSid",
        "start.callSid",
        "start.accountSid",
        "start.tracks",
        "start.mediaFormat",
        "start.mediaFormat.encoding",
        "start.mediaFormat.sampleRate",
        "start.mediaFormat.channels",
    ],
)
def test_a_start_missing_a_field_names_it(path: str) -> None:
    with pytest.raises(MissingField) as raised:
        parse_start(without(recorded("start"), path))
    assert raised.value.field == path
    assert path in str(raised.value)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("start.callSid", 42),
        ("start.streamSid", ""),
        ("start.tracks", "inbound"),
        ("start.mediaFormat", "audio/x-mulaw"),
        ("start.mediaFormat.sampleRate", "8000"),
        ("start.mediaFormat.channels", True),
        ("start.customParameters", {"token": 7}),
    ],
)
def test_a_start_with_a_mistyped_field_names_it(path: str, value: object) -> None:
    with pytest.raises(InvalidField) as raised:
        parse_start(with_value(recorded("start"), path, value))
    assert not isinstance(raised.value, MissingField)
    assert raised.value.field == path


@pytest.mark.parametrize(
    ("setting", "value"),
    [("encoding", "audio/x-alaw"), ("sampleRate", 16000), ("channels", 2)],
)
def test_a_start_in_another_media_format_is_refused(setting: str, value: object) -> None:
    message = with_value(recorded("start"), f"start.mediaFormat.{setting}", value)
    with pytest.raises(UnsupportedMediaFormat) as raised:
        parse_start(message)
    error = raised.value
    assert {
        "encoding": error.encoding,
        "sampleRate": error.sample_rate,
        "channels": error.channels,
    }[setting] == value
    assert "audio/x-mulaw 8000 Hz mono" in str(error)


@pytest.mark.parametrize("message", ["not json", b"\xff\xfe{", "", '["start"]', "null"])
def test_a_message_that_is_not_a_json_object_is_malformed(message: str | bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_start(message)
    with pytest.raises(MalformedMessage):
        parse_connected(message)


def test_every_parse_error_is_a_protocol_error_and_a_value_error() -> None:
    for error in (MalformedMessage, UnexpectedEvent, MissingField, UnsupportedMediaFormat):
        assert issubclass(error, ProtocolError)
    assert issubclass(ProtocolError, ValueError)
    assert issubclass(HandshakeTimeout, ProtocolError)
    assert issubclass(HandshakeAborted, ProtocolError)


def test_our_mark_round_trips_through_twilio_s_echo_shape() -> None:
    sent = decode(mark_message("MZ0", "utterance:reply-1"))
    assert sent == {"event": "mark", "streamSid": "MZ0", "mark": {"name": "utterance:reply-1"}}
    assert parse_mark_name(recorded("mark")) == "greeting"
    with pytest.raises(MissingField):
        parse_mark_name({"event": "mark", "mark": {}})


def test_media_is_told_from_its_opening_and_nothing_else_passes_for_it() -> None:
    media = recorded("media")
    assert looks_like_media(json.dumps(media))  # Python's default separators
    assert looks_like_media(json.dumps(media, separators=(",", ":")))  # Twilio's
    assert looks_like_media(json.dumps(media, separators=(",", ":")).encode())
    for other in ("mark", "dtmf", "stop", "start"):
        assert not looks_like_media(json.dumps(recorded(other)))
    # Unsure is "no": the caller parses it.
    assert not looks_like_media(json.dumps({"streamSid": "MZ0", **media}))
    assert not looks_like_media('{"event":"media_other"}')
    assert not looks_like_media("")


# --- Reading the handshake off a socket ----------------------------------------------------


@asynccontextmanager
async def handshake_server(
    timeout_s: float,
) -> AsyncIterator[tuple[str, asyncio.Future[StreamStart]]]:
    """A server whose handler reads the handshake; the future holds what it read or raised."""
    outcome: asyncio.Future[StreamStart] = asyncio.get_running_loop().create_future()

    async def handler(connection: ServerConnection) -> None:
        try:
            outcome.set_result(await read_handshake(connection, timeout_s=timeout_s))
        except ProtocolError as exc:
            outcome.set_exception(exc)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", outcome


async def outcome_of(outcome: asyncio.Future[StreamStart]) -> StreamStart:
    return await asyncio.wait_for(outcome, 5.0)


@pytest.mark.parametrize("events", [("connected", "start"), ("start",)])
async def test_the_handshake_is_read_with_or_without_connected(events: tuple[str, ...]) -> None:
    async with handshake_server(timeout_s=2.0) as (url, outcome):
        async with connect(url) as twilio:
            for event in events:
                await twilio.send(json.dumps(recorded(event)))
            start = await outcome_of(outcome)
    assert start.stream_sid == recorded("start")["start"]["streamSid"]


async def test_a_silent_client_times_the_handshake_out() -> None:
    async with handshake_server(timeout_s=0.2) as (url, outcome):
        async with connect(url) as twilio:
            await twilio.send(json.dumps(recorded("connected")))  # then nothing
            with pytest.raises(HandshakeTimeout) as raised:
                await outcome_of(outcome)
    assert raised.value.timeout_s == 0.2


async def test_a_socket_closed_before_start_aborts_the_handshake() -> None:
    async with handshake_server(timeout_s=2.0) as (url, outcome):
        async with connect(url) as twilio:
            await twilio.send(json.dumps(recorded("connected")))
        with pytest.raises(HandshakeAborted):
            await outcome_of(outcome)


async def test_media_before_start_is_the_wrong_event() -> None:
    async with handshake_server(timeout_s=2.0) as (url, outcome):
        async with connect(url) as twilio:
            await twilio.send(json.dumps(recorded("media")))
            with pytest.raises(UnexpectedEvent):
                await outcome_of(outcome)
