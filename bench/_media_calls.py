"""Callers for `bench.media`: timed Media Streams clients and their figures, hang-up stub, echo."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, NamedTuple

from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from simulator.audio import SpeechSynth
from simulator.conversation import run_script
from simulator.media_client import MediaStreamClient
from simulator.personas import PERSONAS
from simulator.sidechannel import NullPublisher, TranscriptPublisher
from simulator.twiml import Stream

PERSONA = "confirm"
BOT_WAIT_S = 15.0  # the simulator's default wait for the bot to answer
LINGER_S = 3.0  # after its last line the caller waits this long for the bot to hang up
TURN_GAP_MS = 600  # the simulator's default: this much bot silence ends a bot turn
OPEN_TIMEOUT_S = 10.0  # generous: 50 sockets open at once on a loaded 2-core machine
ACCOUNT_SID = "AC" + "0" * 32


class Arrival(NamedTuple):
    """One outbound `media` message: when, how much μ-law (8 bytes per ms), and how many
    marks had arrived before it (the worker marks the end of each TTS utterance)."""

    at_s: float
    size: int
    marks: int


@dataclass
class CallTiming:
    """What one caller saw, on the monotonic clock: when `start` went out, each outbound
    `media` message, the bot's response latencies."""

    call_sid: str
    start_s: float = 0.0
    end_s: float = 0.0
    arrivals: list[Arrival] = field(default_factory=list)
    response_ms: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def first_audio_ms(self) -> float | None:
        if not self.arrivals or not self.start_s:
            return None
        return (self.arrivals[0].at_s - self.start_s) * 1000


class TimedStream(MediaStreamClient):
    """The simulator's client, stamping `start` and every outbound `media` message: it keeps
    no per-message times of its own, and these two hooks change nothing it does."""

    def __init__(self, timing: CallTiming, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timing = timing

    async def _send_event(self, message: dict[str, object]) -> None:
        if message.get("event") == "start":
            self.timing.start_s = time.monotonic()
        await super()._send_event(message)

    def _on_media(self, body: dict[str, object]) -> None:
        payload = body.get("payload")
        # base64: 3 bytes per 4 characters, less the padding.
        size = len(payload) * 3 // 4 - payload.count("=") if isinstance(payload, str) else 0
        marks = len(self.report.marks_received)
        self.timing.arrivals.append(Arrival(time.monotonic(), size, marks))
        super()._on_media(body)


def _client(
    url: str, timing: CallTiming, token: str, synth: SpeechSynth, publisher: TranscriptPublisher
) -> TimedStream:
    return TimedStream(
        timing,
        stream=Stream(url=url, parameters={"token": token}),
        call_sid=timing.call_sid,
        account_sid=ACCOUNT_SID,
        persona=PERSONA,
        synth=synth,
        publisher=publisher,
        turn_gap_ms=TURN_GAP_MS,
        open_timeout_s=OPEN_TIMEOUT_S,
    )


async def scripted_call(
    url: str,
    timing: CallTiming,
    token: str,
    synth: SpeechSynth,
    publisher: TranscriptPublisher,
    *,
    deadline_s: float,
    greeting_only: bool = False,
) -> CallTiming:
    """Play the `confirm` persona until the worker hangs up, the script ends, or `deadline_s`
    (monotonic); with `greeting_only`, hang up once the bot's first turn has been heard."""
    client = _client(url, timing, token, synth, publisher)
    try:
        async with client:
            script: Coroutine[Any, Any, object]
            if greeting_only:
                script = client.wait_for_bot_reply(BOT_WAIT_S)
            else:
                persona = PERSONAS[PERSONA]
                script = run_script(persona, client, bot_wait_s=BOT_WAIT_S, linger_s=LINGER_S)
            await _until_closed(client, script, deadline_s)
    except Exception as exc:  # one failed call is counted in the figures, not fatal to a tier
        timing.error = repr(exc)
    timing.end_s = time.monotonic()
    turns = client.tracker.turns
    timing.response_ms = [t.response_latency_ms for t in turns if t.response_latency_ms is not None]
    return timing


async def held_call(url: str, timing: CallTiming, synth: SpeechSynth, seconds: float) -> CallTiming:
    """Keep a stream open for `seconds`, sending silence (the echo baseline's callers)."""
    client = _client(url, timing, "-", synth, NullPublisher())
    try:
        async with client:
            await _until_closed(client, asyncio.sleep(seconds), time.monotonic() + seconds + 5)
    except Exception as exc:
        timing.error = repr(exc)
    timing.end_s = time.monotonic()
    return timing


async def _until_closed(
    client: MediaStreamClient, work: Coroutine[Any, Any, object], deadline_s: float
) -> None:
    tasks = [asyncio.create_task(work), asyncio.create_task(client.closed.wait())]
    try:
        timeout_s = max(0.0, deadline_s - time.monotonic())
        await asyncio.wait(tasks, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- what the callers saw, as figures ------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, math.ceil(q / 100 * len(ranked)) - 1))]


def pacing(arrivals: Sequence[Arrival]) -> tuple[list[float], float, float]:
    """Per call: each outbound message's inter-arrival deviation (ms) from the audio the one
    before it carried, leaving out each utterance's opening burst (the pacer's intended lead);
    and the caller's playout: ms of audio, ms its buffer ran dry mid-utterance. A mark between
    two messages ends an utterance; a stream without marks (the echo) is one utterance."""
    deviations: list[float] = []
    audio_ms = starved_ms = previous_ms = 0.0
    playout_end_s = previous_s = -math.inf
    in_burst, marks = True, -1
    for arrived_s, size, marks_before in arrivals:
        gap_ms = (arrived_s - previous_s) * 1000
        if marks_before != marks:
            in_burst, marks = True, marks_before
        else:
            starved_ms += max(0.0, arrived_s - playout_end_s) * 1000
            in_burst = in_burst and gap_ms < previous_ms / 2
            if not in_burst:
                deviations.append(abs(gap_ms - previous_ms))
        previous_s, previous_ms = arrived_s, size / 8
        playout_end_s = max(playout_end_s, arrived_s) + previous_ms / 1000
        audio_ms += previous_ms
    return deviations, audio_ms, starved_ms


@dataclass(frozen=True)
class Figures:
    first_ms: list[float]
    deviations_ms: list[float]
    audio_ms: float
    starved_ms: float
    silent: int

    @classmethod
    def of(cls, timings: Sequence[CallTiming]) -> Figures:
        """All of a tier's calls together."""
        deviations: list[float] = []
        audio = starved = 0.0
        for timing in timings:
            d, a, s = pacing(timing.arrivals)
            deviations, audio, starved = deviations + d, audio + a, starved + s
        first = [ms for t in timings if (ms := t.first_audio_ms) is not None]
        silent = sum(1 for t in timings if t.error or not t.arrivals)
        return cls(first, deviations, audio, starved, silent)

    @property
    def starved_share(self) -> float:
        """Of the time callers spent in bot utterances, the share they heard a gap."""
        playout_ms = self.audio_ms + self.starved_ms
        return self.starved_ms / playout_ms if playout_ms else float("nan")


class HangUpStub:
    """Answers the worker's hang-up (`POST .../Calls/{Sid}.json`, Status=completed) with 200
    as Twilio would, so that no request leaves this machine."""

    def __init__(self) -> None:
        self.hang_ups = 0
        self._runner: web.AppRunner | None = None

    async def start(self, port: int) -> str:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{account}/Calls/{sid}.json", self._hang_up)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}"

    async def _hang_up(self, request: web.Request) -> web.Response:
        self.hang_ups += 1
        return web.json_response({"sid": request.match_info["sid"], "status": "completed"})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _echo(connection: ServerConnection) -> None:
    """The baseline's whole call: each inbound `media` frame goes straight back out."""
    stream_sid = ""
    try:
        async for raw in connection:
            message = json.loads(raw)
            event = message.get("event")
            if event == "start":
                stream_sid = message["start"]["streamSid"]
            elif event == "media" and stream_sid:
                media = {"payload": message["media"]["payload"]}
                await connection.send(
                    json.dumps({"event": "media", "streamSid": stream_sid, "media": media})
                )
            elif event == "stop":
                return
    except ConnectionClosed:
        return


def _health(connection: ServerConnection, request: Request) -> Response | None:
    if request.path == "/healthz":
        return connection.respond(HTTPStatus.OK, "ok\n")
    return None


async def serve_echo(port: int) -> None:
    """Serve until killed (the bench runs this in a child process of its own)."""
    async with serve(_echo, "127.0.0.1", port, compression=None, process_request=_health) as server:
        await server.serve_forever()
