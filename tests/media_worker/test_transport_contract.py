"""TwilioStreamTransport against the Twilio Media Streams wire, over a real local websocket:
a recorded session replayed by a client playing Twilio, and a pipecat pipeline on the server."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
import structlog.testing
from aiohttp import web
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    BotSpeakingFrame,
    ClientConnectedFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionWorkerFrame,
    OutputAudioRawFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_transport import TransportParams
from pipecat.workers.runner import WorkerRunner
from pydantic import SecretStr
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from media_worker.protocol import StreamStart, parse_start, read_handshake
from media_worker.transport import (
    UTTERANCE_MARK_PREFIX,
    HangUpOptions,
    PlaybackMarkFrame,
    PlaybackMarkReachedFrame,
    StreamEnd,
    StreamEndReason,
    TwilioStreamTransport,
)
from media_worker.transport.output import BOT_SPEAKING_PERIOD_S

AsyncTest = TypeVar("AsyncTest", bound=Callable[..., Awaitable[None]])

FIXTURE = Path(__file__).parent / "fixtures" / "twilio_media_stream.jsonl"
AUTH_TOKEN = "test-auth-token"
RATE_HZ = 8000
FRAME_SAMPLES = 160  # Twilio's 20 ms frames
CHUNK_SAMPLES = 800  # the transport's output chunk: 100 ms (pipecat's default is 40 ms)
WAIT_S = 10.0

# --- G.711 μ-law, the reference algorithm (what audioop and Twilio use) -------------------

_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def ulaw_encode_sample(sample: int) -> int:
    value = sample >> 2  # 14-bit magnitude
    mask = 0x7F if value < 0 else 0xFF
    value = min(abs(value), 8159) + 33  # clip, then bias
    segment = next((i for i, end in enumerate(_SEGMENT_ENDS) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


def ulaw_decode_sample(code: int) -> int:
    code = ~code & 0xFF
    magnitude = ((((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)) - 0x84
    return -magnitude if code & 0x80 else magnitude


def ulaw_encode(samples: Sequence[int]) -> bytes:
    return bytes(ulaw_encode_sample(sample) for sample in samples)


def ulaw_to_pcm16(data: bytes) -> bytes:
    return struct.pack(f"<{len(data)}h", *(ulaw_decode_sample(code) for code in data))


def tone(
    frequency_hz: float,
    first_sample: int,
    count: int,
    amplitude: int = 8000,
    rate_hz: int = RATE_HZ,
) -> list[int]:
    step = 2 * math.pi * frequency_hz / rate_hz
    return [
        round(amplitude * math.sin(step * n)) for n in range(first_sample, first_sample + count)
    ]


def pcm16(samples: Sequence[int]) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


# --- The recorded session -------------------------------------------------------------------


def load_session() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


def only(messages: Sequence[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [message for message in messages if message["event"] == event]


# --- The media worker's side: handshake, transport, pipeline -------------------------------


class FrameRecorder(FrameProcessor):
    """Passes every frame on and keeps the downstream ones the transport's input produced."""

    KEPT = (ClientConnectedFrame, InputAudioRawFrame, InputDTMFFrame, PlaybackMarkReachedFrame)

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []
        self.bot_speaking_upstream = 0
        self._changed = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM and isinstance(frame, self.KEPT):
            self.frames.append(frame)
            self._changed.set()
        elif direction is FrameDirection.UPSTREAM and isinstance(frame, BotSpeakingFrame):
            self.bot_speaking_upstream += 1
        await self.push_frame(frame, direction)

    def of(self, kind: type[Frame]) -> list[Any]:
        return [frame for frame in self.frames if isinstance(frame, kind)]

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT_S):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


@dataclass
class ServedCall:
    """One stream as the media worker sees it, with what its transport reported."""

    transport: TwilioStreamTransport
    worker: PipelineWorker
    recorder: FrameRecorder
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    connected_with: list[StreamStart] = field(default_factory=list)
    disconnects: list[StreamEnd] = field(default_factory=list)
    marks: list[str] = field(default_factory=list)

    async def wait_finished(self) -> None:
        async with asyncio.timeout(WAIT_S):
            await self.finished.wait()


class MediaWorkerUnderTest:
    """A websockets server that runs one pipeline per accepted stream, as the worker will."""

    def __init__(self, hang_up: HangUpOptions | None, params: TransportParams | None) -> None:
        self._hang_up = hang_up
        self._params = params
        self._calls: asyncio.Queue[ServedCall | BaseException] = asyncio.Queue()

    async def next_call(self) -> ServedCall:
        async with asyncio.timeout(WAIT_S):
            call = await self._calls.get()
        if isinstance(call, BaseException):
            raise call
        await asyncio.wait_for(call.connected.wait(), WAIT_S)
        return call

    async def handle(self, connection: ServerConnection) -> None:
        try:
            start = await read_handshake(connection)
            call = self._build_call(connection, start)
        except Exception as exc:  # surfaced to the test by next_call()
            await self._calls.put(exc)
            raise
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(call.worker)
        await self._calls.put(call)
        try:
            await runner.run()
        finally:
            call.finished.set()

    def _build_call(self, connection: ServerConnection, start: StreamStart) -> ServedCall:
        transport = TwilioStreamTransport(
            connection, start, hang_up=self._hang_up, params=self._params
        )
        recorder = FrameRecorder()
        pipeline = Pipeline([transport.input(), recorder, transport.output()])
        worker = PipelineWorker(pipeline, enable_rtvi=False)
        call = ServedCall(transport=transport, worker=worker, recorder=recorder)

        async def on_connected(_: TwilioStreamTransport, stream: StreamStart) -> None:
            call.connected_with.append(stream)
            call.connected.set()

        async def on_disconnected(_: TwilioStreamTransport, end: StreamEnd) -> None:
            call.disconnects.append(end)

        async def on_mark(_: TwilioStreamTransport, name: str) -> None:
            call.marks.append(name)

        transport.add_event_handler("on_client_connected", on_connected)
        transport.add_event_handler("on_client_disconnected", on_disconnected)
        transport.add_event_handler("on_mark", on_mark)
        return call


class Twilio:
    """The client side: sends what Twilio sends and reads what the media worker answers."""

    def __init__(self, websocket: ClientConnection, session: list[dict[str, Any]]) -> None:
        self.websocket = websocket
        self.session = session
        self.stream_sid: str = session[1]["streamSid"]
        self.received: list[dict[str, Any]] = []
        self.arrival_s: list[float] = []

    async def send(self, message: Mapping[str, Any]) -> None:
        await self.websocket.send(json.dumps(message))

    async def handshake(self) -> None:
        await self.send(self.session[0])  # connected
        await self.send(self.session[1])  # start

    async def read_until(self, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Messages received from now up to and including the first one `done` accepts."""
        first = len(self.received)
        async with asyncio.timeout(WAIT_S):
            while True:
                message = json.loads(await self.websocket.recv())
                self.received.append(message)
                self.arrival_s.append(asyncio.get_running_loop().time())
                if done(message):
                    return self.received[first:]

    async def read_for(self, duration_s: float) -> list[dict[str, Any]]:
        """Whatever arrives within `duration_s`."""
        try:
            await asyncio.wait_for(self.read_until(lambda _: False), duration_s)
        except TimeoutError:
            pass
        return self.received


@dataclass
class FakeTwilioRest:
    """Twilio's Call update endpoint, recording the hang-ups it receives."""

    base_url: str = ""
    hang_ups: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    async def update_call(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.hang_ups.append((request.path, request.headers.get("Authorization", ""), form))
        return web.json_response({"sid": request.match_info["call_sid"], "status": "completed"})


@asynccontextmanager
async def fake_twilio_rest() -> AsyncIterator[FakeTwilioRest]:
    rest = FakeTwilioRest()
    app = web.Application()
    app.router.add_post(
        "/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json", rest.update_call
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    rest.base_url = f"http://{host}:{port}"
    try:
        yield rest
    finally:
        await runner.cleanup()


@asynccontextmanager
async def twilio_stream(
    hang_up: HangUpOptions | None = None, params: TransportParams | None = None
) -> AsyncIterator[tuple[Twilio, ServedCall]]:
    """A media worker on 127.0.0.1, and Twilio connected to it past the handshake."""
    media_worker = MediaWorkerUnderTest(hang_up, params)
    async with serve(media_worker.handle, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", compression=None) as websocket:
            twilio = Twilio(websocket, load_session())
            await twilio.handshake()
            call = await media_worker.next_call()
            try:
                yield twilio, call
            finally:
                # A pipeline that never ends must fail its test, not hang the server's exit.
                if not call.finished.is_set():
                    await call.worker.cancel(reason="the test is over")


async def play_tts(call: ServedCall, samples: Sequence[int], context_id: str) -> None:
    await call.worker.queue_frames(
        [
            TTSStartedFrame(context_id=context_id),
            TTSAudioRawFrame(pcm16(samples), RATE_HZ, 1, context_id=context_id),
            TTSStoppedFrame(context_id=context_id),
        ]
    )


def media_bytes(messages: Sequence[dict[str, Any]]) -> list[bytes]:
    return [base64.b64decode(message["media"]["payload"]) for message in only(messages, "media")]


def allow_pipecat_hang_up(test: AsyncTest) -> AsyncTest:
    """pipecat's serializer authenticates its hang-up with aiohttp.BasicAuth and `auth=`, both
    deprecated in aiohttp 3.14; under `error` either warning aborts the hang-up inside pipecat."""
    for message in ("BasicAuth is deprecated", "The 'auth' parameter is deprecated"):
        test = pytest.mark.filterwarnings(f"ignore:{message}:DeprecationWarning")(test)
    return test


# --- The recorded session is what it says it is -------------------------------------------


def test_the_recorded_session_is_a_twilio_stream_of_a_440_hz_tone() -> None:
    session = load_session()
    assert [m["event"] for m in session[:2]] == ["connected", "start"]
    assert [m["event"] for m in session[-3:]] == ["dtmf", "mark", "stop"]
    start = parse_start(json.dumps(session[1]))
    assert start.custom_parameters["token"]
    media = only(session, "media")
    assert len(media) == 50
    for index, message in enumerate(media):
        assert message["streamSid"] == start.stream_sid
        expected = ulaw_encode(tone(440, index * FRAME_SAMPLES, FRAME_SAMPLES))
        assert base64.b64decode(message["media"]["payload"]) == expected


# --- Inbound -------------------------------------------------------------------------------


@allow_pipecat_hang_up  # so that a hang-up, were one attempted, would reach the fake
async def test_replayed_session_becomes_8khz_audio_dtmf_and_mark_frames_and_stop_ends_it() -> None:
    async with fake_twilio_rest() as rest:
        hang_up = HangUpOptions(SecretStr(AUTH_TOKEN), api_base_url=rest.base_url)
        async with twilio_stream(hang_up) as (twilio, call):
            assert (
                call.connected_with[0].custom_parameters
                == twilio.session[1]["start"]["customParameters"]
            )
            media = only(twilio.session, "media")
            for message in media:  # in real time, as Twilio sends them
                await twilio.send(message)
                await asyncio.sleep(FRAME_SAMPLES / RATE_HZ)
            # Audio reaches the pipeline through a queue, DTMF and marks directly; wait so
            # the assertions below do not depend on which gets there first.
            await call.recorder.wait_for(lambda: len(call.recorder.of(InputAudioRawFrame)) == 50)
            for message in only(twilio.session, "dtmf") + only(twilio.session, "mark"):
                await twilio.send(message)
            await call.recorder.wait_for(lambda: bool(call.recorder.of(PlaybackMarkReachedFrame)))
            await twilio.send(only(twilio.session, "stop")[0])

            await call.wait_finished()
            async with asyncio.timeout(WAIT_S):
                await twilio.websocket.wait_closed()

        assert isinstance(call.recorder.frames[0], ClientConnectedFrame)
        audio = call.recorder.of(InputAudioRawFrame)
        assert [(f.sample_rate, f.num_channels, len(f.audio)) for f in audio] == [
            (RATE_HZ, 1, 2 * FRAME_SAMPLES)
        ] * 50
        assert [f.audio for f in audio] == [ulaw_to_pcm16(chunk) for chunk in media_bytes(media)]
        assert [f.button for f in call.recorder.of(InputDTMFFrame)] == [KeypadEntry.FIVE]
        assert [f.mark_name for f in call.recorder.of(PlaybackMarkReachedFrame)] == ["greeting"]
        assert call.marks == ["greeting"]
        assert call.disconnects == [StreamEnd(StreamEndReason.STOP)]
        assert call.transport.stream_end == StreamEnd(StreamEndReason.STOP)
        assert rest.hang_ups == []  # the caller already hung up: nothing to end over REST
        assert twilio.websocket.close_code == 1000


@pytest.mark.parametrize(
    ("close", "reason", "code"),
    [
        ("clean", StreamEndReason.CLOSED, 1000),
        ("abort", StreamEndReason.CONNECTION_LOST, 1006),
    ],
)
async def test_a_closed_socket_ends_the_pipeline(
    close: str, reason: StreamEndReason, code: int
) -> None:
    async with twilio_stream() as (twilio, call):
        await twilio.send(only(twilio.session, "media")[0])
        await call.recorder.wait_for(lambda: bool(call.recorder.of(InputAudioRawFrame)))
        if close == "clean":
            await twilio.websocket.close()
        else:
            twilio.websocket.transport.abort()  # the TCP connection drops, no close frame
        await call.wait_finished()

    assert call.disconnects == [
        StreamEnd(reason, close_code=code, detail=call.disconnects[0].detail)
    ]
    assert call.transport.stream_end == call.disconnects[0]


async def test_malformed_messages_are_skipped_and_the_call_goes_on() -> None:
    async with twilio_stream() as (twilio, call):
        sid = twilio.stream_sid
        await twilio.websocket.send("not json")
        for bad in (
            {"event": "media", "streamSid": sid, "media": {"payload": "!!not base64!"}},
            {"event": "media", "streamSid": sid, "media": {"payload": 5}},
            {"event": "mark", "streamSid": sid, "mark": {}},
            {"streamSid": sid},
            {"event": "a-future-event", "streamSid": sid},
        ):
            await twilio.send(bad)
        await twilio.send(only(twilio.session, "media")[0])
        await call.recorder.wait_for(lambda: bool(call.recorder.of(InputAudioRawFrame)))
        alive = not call.finished.is_set() and not call.disconnects
        await twilio.send(only(twilio.session, "stop")[0])
        await call.wait_finished()

    assert alive
    assert len(call.recorder.of(InputAudioRawFrame)) == 1
    assert call.marks == []
    assert call.disconnects == [StreamEnd(StreamEndReason.STOP)]


async def test_ignored_caller_audio_is_skipped_while_dtmf_marks_and_stop_still_arrive() -> None:
    async with twilio_stream() as (twilio, call):
        call.transport.ignore_caller_audio()
        media = only(twilio.session, "media")
        await twilio.send(media[0])
        # Another key order skips the fast path: parsed, then dropped all the same.
        await twilio.send({"streamSid": twilio.stream_sid, "event": "media", **media[1]})
        for message in only(twilio.session, "dtmf") + only(twilio.session, "mark"):
            await twilio.send(message)
        await call.recorder.wait_for(lambda: bool(call.recorder.of(PlaybackMarkReachedFrame)))
        await twilio.send(only(twilio.session, "stop")[0])
        await call.wait_finished()

    assert call.recorder.of(InputAudioRawFrame) == []
    assert [f.button for f in call.recorder.of(InputDTMFFrame)] == [KeypadEntry.FIVE]
    assert call.marks == ["greeting"]
    assert call.disconnects == [StreamEnd(StreamEndReason.STOP)]


# --- Outbound ------------------------------------------------------------------------------


async def test_tts_audio_goes_out_as_paced_mulaw_media_then_an_utterance_mark() -> None:
    samples = tone(440, 0, RATE_HZ)  # one second
    async with twilio_stream() as (twilio, call):
        await play_tts(call, samples, context_id="reply-1")
        sent = await twilio.read_until(lambda m: m["event"] == "mark")
        echo = {"event": "mark", "sequenceNumber": "2", "streamSid": twilio.stream_sid}
        await twilio.send({**echo, "mark": sent[-1]["mark"]})  # Twilio: the audio has played
        await call.recorder.wait_for(lambda: bool(call.recorder.of(PlaybackMarkReachedFrame)))
        await twilio.send(only(twilio.session, "stop")[0])
        await call.wait_finished()

    assert {m["event"] for m in sent[:-1]} == {"media"}
    assert {m["streamSid"] for m in sent} == {twilio.stream_sid}
    chunks = media_bytes(sent)
    assert [len(chunk) for chunk in chunks] == [CHUNK_SAMPLES] * (RATE_HZ // CHUNK_SAMPLES)
    assert b"".join(chunks) == ulaw_encode(samples)
    assert sent[-1]["mark"] == {"name": f"{UTTERANCE_MARK_PREFIX}reply-1"}
    assert call.marks == [f"{UTTERANCE_MARK_PREFIX}reply-1"]


async def test_the_bot_is_announced_speaking_at_most_once_per_period() -> None:
    samples = tone(440, 0, 3 * RATE_HZ // 2)  # 1.5 s
    async with twilio_stream() as (twilio, call):
        started = time.monotonic()
        await play_tts(call, samples, context_id="long")
        await twilio.read_until(lambda m: m["event"] == "mark")
        elapsed_s = time.monotonic() - started
        await twilio.send(only(twilio.session, "stop")[0])
        await call.wait_finished()

    # pipecat's own period (0.2 s) would announce it 7 or 8 times over this utterance.
    assert 1 <= call.recorder.bot_speaking_upstream <= 1 + elapsed_s / BOT_SPEAKING_PERIOD_S


async def test_output_audio_at_another_rate_goes_out_at_8khz_before_a_requested_mark() -> None:
    samples = tone(440, 0, 8000, amplitude=6000, rate_hz=16000)  # 0.5 s at 16 kHz
    async with twilio_stream() as (twilio, call):
        await call.worker.queue_frames(
            [OutputAudioRawFrame(pcm16(samples), 16000, 1), PlaybackMarkFrame(mark_name="prompt")]
        )
        sent = await twilio.read_until(lambda m: m["event"] == "mark")
        await twilio.send(only(twilio.session, "stop")[0])
        await call.wait_finished()

    assert sent[-1] == {"event": "mark", "streamSid": twilio.stream_sid, "mark": {"name": "prompt"}}
    chunks = media_bytes(sent)
    assert {len(chunk) for chunk in chunks} == {CHUNK_SAMPLES}
    # 0.5 s at 8 kHz is 4000 bytes; the resampler and the chunker may still hold one chunk.
    assert 4000 - 2 * CHUNK_SAMPLES <= sum(map(len, chunks)) <= 4000


async def test_an_interruption_clears_twilio_and_stops_the_utterance() -> None:
    samples = tone(440, 0, 3 * RATE_HZ)  # three seconds
    async with twilio_stream() as (twilio, call):
        await play_tts(call, samples, context_id="long")
        await twilio.read_until(lambda _: len(only(twilio.received, "media")) >= 3)
        await call.worker.queue_frame(InterruptionWorkerFrame())
        before_clear = await twilio.read_until(lambda m: m["event"] == "clear")
        cleared_at = len(twilio.received)
        after_clear = (await twilio.read_for(0.5))[cleared_at:]
        received = list(twilio.received)
        await twilio.send(only(twilio.session, "stop")[0])
        await call.wait_finished()

    assert before_clear[-1] == {"event": "clear", "streamSid": twilio.stream_sid}
    assert after_clear == []  # nothing of the cut utterance follows the clear
    assert sum(map(len, media_bytes(received))) < len(samples) // 2
    assert only(received, "mark") == []  # an utterance cut short gets no completion mark


# --- Ending the call ourselves ---------------------------------------------------------------


@allow_pipecat_hang_up
@pytest.mark.parametrize("hang_up_configured", [True, False])
async def test_ending_the_pipeline_hangs_up_if_configured_then_closes_the_socket(
    hang_up_configured: bool,
) -> None:
    params = TransportParams(
        audio_in_enabled=True, audio_out_enabled=True, audio_out_end_silence_secs=0
    )
    async with fake_twilio_rest() as rest:
        hang_up = HangUpOptions(SecretStr(AUTH_TOKEN), api_base_url=rest.base_url)
        with structlog.testing.capture_logs() as logs:
            async with twilio_stream(hang_up if hang_up_configured else None, params) as (
                twilio,
                call,
            ):
                await call.worker.queue_frame(EndFrame())
                await call.wait_finished()
                async with asyncio.timeout(WAIT_S):
                    await twilio.websocket.wait_closed()

    start = call.connected_with[0]
    credentials = base64.b64encode(f"{start.account_sid}:{AUTH_TOKEN}".encode()).decode()
    expected_hang_up = (
        f"/2010-04-01/Accounts/{start.account_sid}/Calls/{start.call_sid}.json",
        f"Basic {credentials}",
        {"Status": "completed"},
    )
    assert rest.hang_ups == ([expected_hang_up] if hang_up_configured else [])
    assert twilio.websocket.close_code == 1000
    assert call.disconnects == []  # we ended it: no disconnect event, no far-end reason
    assert call.transport.stream_end is None
    assert [e for e in logs if e["log_level"] in ("warning", "error")] == []


async def test_ending_after_speech_sends_the_speech_and_no_end_silence() -> None:
    samples = tone(440, 0, RATE_HZ // 2)  # half a second
    async with twilio_stream() as (twilio, call):  # the default params
        await play_tts(call, samples, context_id="bye")
        await call.worker.queue_frame(EndFrame())
        async with asyncio.timeout(WAIT_S):
            received = [json.loads(m) async for m in twilio.websocket]  # until the worker closes
        await call.wait_finished()

    chunks = media_bytes(received)
    # pipecat's end silence would add one 2 s message (16,000 bytes) after the speech.
    assert {len(chunk) for chunk in chunks} == {CHUNK_SAMPLES}
    sent = b"".join(chunks)
    assert sent[: len(samples)] == ulaw_encode(samples)
    assert len(sent) - len(samples) < CHUNK_SAMPLES  # only the last chunk's padding follows


def test_params_twilio_cannot_carry_are_refused() -> None:
    start = parse_start(json.dumps(load_session()[1]))
    connection = cast(ServerConnection, object())  # never touched: construction fails first
    for params in (
        TransportParams(audio_in_enabled=True, audio_out_enabled=True, audio_out_sample_rate=16000),
        TransportParams(audio_in_enabled=True, audio_out_enabled=False),
        TransportParams(audio_in_enabled=True, audio_out_enabled=True, audio_out_channels=2),
    ):
        with pytest.raises(ValueError):
            TwilioStreamTransport(connection, start, hang_up=None, params=params)
