"""Test doubles for the simulator's counterparts: a status-callback receiver (threaded HTTP)
and a fake media worker (websockets server) that talks Twilio Media Streams back."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx
import numpy as np
from pydantic import SecretStr
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from simulator.audio import FRAME_BYTES, SAMPLE_RATE_HZ, is_voiced, ulaw_encode
from simulator.sdk import sdk_client
from simulator.settings import SimulatorSettings

ACCOUNT_SID = "AC" + "1234abcd" * 4
AUTH_TOKEN = "test-auth-token-123"
TO = "+14155550123"
FROM = "+14155550100"
UNREACHABLE_WS = "ws://127.0.0.1:9/stream"  # port 9 (discard) is closed: connect fails


def sim_settings(**overrides: Any) -> SimulatorSettings:
    """Fast settings for tests: short rings, short speech, no Redis, no espeak."""
    values: dict[str, Any] = dict(
        port=0,
        account_sid=ACCOUNT_SID,
        auth_token=SecretStr(AUTH_TOKEN),
        ring_s=0.05,
        busy_after_s=0.02,
        speech_ms_per_char=12,
        bot_wait_s=5.0,
        linger_s=5.0,
        bot_turn_gap_ms=300,
        redis_url=None,
        espeak_binary=None,
        seed=7,
    )
    values.update(overrides)
    return SimulatorSettings(**values)


def stream_twiml(url: str, persona: str | None = None, **params: str) -> str:
    if persona is not None:
        params["persona"] = persona
    parameters = "".join(f'<Parameter name="{k}" value="{v}"/>' for k, v in params.items())
    return f'<Response><Connect><Stream url="{url}">{parameters}</Stream></Connect></Response>'


def tone(duration_ms: int, frequency_hz: float = 440.0) -> bytes:
    """Voiced μ-law audio standing in for the bot's TTS."""
    t = np.arange(duration_ms * SAMPLE_RATE_HZ // 1000) / SAMPLE_RATE_HZ
    return ulaw_encode((np.sin(2 * np.pi * frequency_hz * t) * 9000).astype(np.int16))


# --- status callbacks ------------------------------------------------------------------


@dataclass
class Hook:
    method: str
    url: str
    signature: str
    params: dict[str, str]
    received_at: float


class CallbackReceiver:
    """A tiny HTTP server in a thread that records each webhook it gets and answers 204."""

    def __init__(self) -> None:
        self.hooks: list[Hook] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                self._record(dict(parse_qsl(body, keep_blank_values=True)))

            def do_GET(self) -> None:  # noqa: N802
                query = self.path.partition("?")[2]
                self._record(dict(parse_qsl(query, keep_blank_values=True)))

            def _record(self, params: dict[str, str]) -> None:
                host = self.headers.get("Host", "")
                hook = Hook(
                    self.command,
                    f"http://{host}{self.path}",
                    self.headers.get("X-Twilio-Signature", ""),
                    params,
                    time.monotonic(),
                )
                with receiver._lock:
                    receiver.hooks.append(hook)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/twilio/status?leg=a"

    def start(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def for_call(self, sid: str) -> list[Hook]:
        with self._lock:
            return [hook for hook in self.hooks if hook.params.get("CallSid") == sid]

    def statuses(self, sid: str) -> list[str]:
        return [hook.params["CallStatus"] for hook in self.for_call(sid)]

    def wait_final(self, sid: str, timeout_s: float = 15.0) -> list[Hook]:
        """Hooks of one call once its final status has arrived."""
        final = {"completed", "busy", "no-answer", "failed", "canceled"}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            hooks = self.for_call(sid)
            if any(hook.params["CallStatus"] in final for hook in hooks):
                time.sleep(0.05)  # let reordered or duplicate deliveries land
                return self.for_call(sid)
            time.sleep(0.01)
        raise AssertionError(f"no final callback for {sid}: {self.statuses(sid)}")

    def wait_finals(self, sids: list[str], timeout_s: float = 30.0) -> dict[str, Hook]:
        """The final callback of each call, once all have arrived."""
        final = {"completed", "busy", "no-answer", "failed", "canceled"}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                finals = {
                    h.params["CallSid"]: h
                    for h in self.hooks
                    if h.params.get("CallStatus") in final
                }
            if all(sid in finals for sid in sids):
                return finals
            time.sleep(0.02)
        raise AssertionError(f"{len(set(sids) - set(finals))} calls had no final callback")

    async def wait_final_async(self, sid: str, timeout_s: float = 15.0) -> list[Hook]:
        return await asyncio.to_thread(self.wait_final, sid, timeout_s)


@contextmanager
def callback_receiver() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


# --- media worker ----------------------------------------------------------------------


@dataclass
class WorkerStream:
    """One websocket the simulator opened, from the media worker's side."""

    ws: ServerConnection
    loop_t0: float
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    voiced: list[bool] = field(default_factory=list)  # per inbound media frame
    closed: bool = False

    @property
    def stream_sid(self) -> str:
        return str(self.first("start")["streamSid"])

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for _, m in self.messages if m.get("event") == name]

    def first(self, name: str) -> dict[str, Any]:
        return self.events(name)[0]

    def is_closed(self) -> bool:
        return self.closed

    def record(self, at: float, message: dict[str, Any]) -> None:
        self.messages.append((at, message))
        if message.get("event") == "media":
            self.voiced.append(is_voiced(base64.b64decode(message["media"]["payload"])))
        self.changed.set()

    async def wait_for(self, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not condition():
                self.changed.clear()
                await self.changed.wait()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps({**message, "streamSid": self.stream_sid}))

    async def send_audio(self, audio: bytes, chunk_bytes: int = 8 * FRAME_BYTES) -> None:
        for offset in range(0, len(audio), chunk_bytes):
            payload = base64.b64encode(audio[offset : offset + chunk_bytes]).decode()
            await self.send({"event": "media", "media": {"payload": payload}})

    async def send_mark(self, name: str) -> None:
        await self.send({"event": "mark", "mark": {"name": name}})

    def mark_echo_time(self, name: str) -> float | None:
        return next(
            (t for t, m in self.messages if m.get("event") == "mark" and m["mark"]["name"] == name),
            None,
        )


Behaviour = Callable[[WorkerStream], Coroutine[Any, Any, None]]


class FakeMediaWorker:
    """A websockets server playing the media worker; `behaviour` runs per stream once `start`
    has arrived, while every message is recorded."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour
        self.streams: list[WorkerStream] = []
        self.max_concurrent = 0
        self._live = 0
        self._server: Server | None = None
        self.new_stream = asyncio.Event()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/media"

    async def __aenter__(self) -> FakeMediaWorker:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        stream = WorkerStream(ws, loop.time())
        self.streams.append(stream)
        self._live += 1
        self.max_concurrent = max(self.max_concurrent, self._live)
        self.new_stream.set()
        behaviour_task: asyncio.Task[None] | None = None
        try:
            async for raw in ws:
                message = json.loads(raw)
                stream.record(loop.time(), message)
                if message.get("event") == "start" and self.behaviour is not None:
                    behaviour_task = asyncio.create_task(self.behaviour(stream))
        except ConnectionClosed:
            pass
        finally:
            self._live -= 1
            stream.closed = True
            stream.changed.set()
            if behaviour_task is not None:
                behaviour_task.cancel()
                await asyncio.gather(behaviour_task, return_exceptions=True)


def turn_taking_bot(
    greeting_ms: int = 400, reply_ms: int = 300, reply_delay_s: float = 0.25
) -> Behaviour:
    """Greets, then answers each caller utterance (voiced frames followed by 200 ms of
    silence) with a tone after `reply_delay_s`, ending each reply with a mark."""

    async def behaviour(stream: WorkerStream) -> None:
        await stream.send_audio(tone(greeting_ms))
        await stream.send_mark("greeting")
        answered = 0
        while True:
            answered += 1
            await stream.wait_for(partial(_heard, stream, answered), timeout_s=60)
            await asyncio.sleep(reply_delay_s)
            await stream.send_audio(tone(reply_ms, 520.0))
            await stream.send_mark(f"reply-{answered}")

    return behaviour


def _heard(stream: WorkerStream, utterances: int) -> bool:
    return _utterances_ended(stream.voiced) >= utterances


def _utterances_ended(voiced: list[bool], silence_frames: int = 10) -> int:
    count, run, speaking = 0, 0, False
    for flag in voiced:
        if flag:
            speaking, run = True, 0
        elif speaking:
            run += 1
            if run >= silence_frames:
                count, speaking = count + 1, False
    return count


class ThreadedSdk:
    """The real (sync) twilio SDK driven from async tests through worker threads, the way
    a Celery task would call it, without blocking the event loop the simulator runs on."""

    def __init__(self, base_url: str) -> None:
        self.client = sdk_client(base_url, ACCOUNT_SID, AUTH_TOKEN)

    async def create(self, **params: Any) -> Any:
        return await asyncio.to_thread(self.client.calls.create, **params)

    async def update(self, sid: str, **params: Any) -> Any:
        return await asyncio.to_thread(self.client.calls(sid).update, **params)

    async def fetch(self, sid: str) -> Any:
        return await asyncio.to_thread(self.client.calls(sid).fetch)

    def close(self) -> None:
        self.client.http_client.session.close()


@asynccontextmanager
async def async_sdk(base_url: str) -> AsyncIterator[ThreadedSdk]:
    sdk = ThreadedSdk(base_url)
    try:
        yield sdk
    finally:
        sdk.close()


async def report(base_url: str, sid: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"{base_url}/_sim/calls/{sid}")
    response.raise_for_status()
    return dict(response.json())


async def wait_final_report(base_url: str, sid: str, timeout_s: float = 10.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout_s):
        while True:
            data = await report(base_url, sid)
            if data["final"]:
                return data
            await asyncio.sleep(0.05)
