"""Twilio Media Streams from the caller's side: opens the `<Stream url>` websocket and sends
`connected`, `start`, 20 ms `media` frames in real time (speech, else silence), `dtmf`, `mark`
echoes and `stop`; plays the bot's audio against the clock and honours `clear`."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from simulator import media_messages as messages
from simulator.audio import (
    BYTES_PER_MS,
    FRAME_BYTES,
    FRAME_MS,
    SILENCE_FRAME,
    SpeechSynth,
    beep,
    cut_speech,
    is_voiced,
)
from simulator.calls import new_sid
from simulator.errors import StreamConnectError
from simulator.playback import BotTurnTracker, PlaybackBuffer
from simulator.report import StreamReport, Utterance
from simulator.sidechannel import TranscriptPublisher
from simulator.twiml import Stream

log = structlog.get_logger(__name__)

_FRAME_S = FRAME_MS / 1000
_SILENCE_B64 = base64.b64encode(SILENCE_FRAME).decode("ascii")


@dataclass
class _Speaking:
    audio: bytes
    utterance: Utterance | None  # None for tones, which are not transcribed
    done: asyncio.Future[None]
    position: int = 0
    last_voiced_ms: int | None = None  # end of the last voiced frame sent: the last word's end


class MediaStreamClient:
    """One stream. `async with` opens it (raising `StreamConnectError`) and, on exit, sends
    `stop` and closes the socket unless the media worker closed it first (`closed`)."""

    def __init__(
        self,
        *,
        stream: Stream,
        call_sid: str,
        account_sid: str,
        persona: str,
        synth: SpeechSynth,
        publisher: TranscriptPublisher,
        turn_gap_ms: int,
        open_timeout_s: float,
    ) -> None:
        self.call_sid = call_sid
        self.account_sid = account_sid
        self.stream_sid = new_sid("MZ")
        self._url = stream.url
        self._synth = synth
        self._publisher = publisher
        self._open_timeout_s = open_timeout_s
        self.tracker = BotTurnTracker(turn_gap_ms)
        self.report = StreamReport(
            url=stream.url,
            stream_sid=self.stream_sid,
            custom_parameters=dict(stream.parameters),
            persona=persona,
            speech_engine=synth.engine,
            bot_turns=self.tracker.turns,
        )
        self.closed = asyncio.Event()  # the media worker closed the socket
        self._buffer = PlaybackBuffer()
        self._ws: ClientConnection | None = None
        self._sequence = 0
        self._chunk = 0
        self._outbox: list[dict[str, object]] = []
        self._speech: _Speaking | None = None
        self._ticked = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._t0 = 0.0
        self._stopped = False

    async def __aenter__(self) -> Self:
        try:
            self._ws = await connect(
                self._url,
                open_timeout=self._open_timeout_s,
                close_timeout=2,
                compression=None,
                max_size=2**23,
                user_agent_header="Twilio.TmeWs/1.0",
            )
        except (OSError, WebSocketException, TimeoutError) as exc:
            raise StreamConnectError(self._url, repr(exc)) from exc
        self._t0 = asyncio.get_running_loop().time()
        try:
            await self._ws.send(json.dumps(messages.CONNECTED))
            await self._send_event(
                messages.start(
                    account_sid=self.account_sid,
                    stream_sid=self.stream_sid,
                    call_sid=self.call_sid,
                    parameters=self.report.custom_parameters,
                )
            )
        except ConnectionClosed as exc:
            raise StreamConnectError(self._url, f"closed during the handshake: {exc}") from exc
        self._tasks = [
            asyncio.create_task(self._pump(), name=f"media-pump-{self.call_sid}"),
            asyncio.create_task(self._receive(), name=f"media-recv-{self.call_sid}"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Stop sending; tell the worker with `stop` and close, unless it already closed."""
        if self._stopped or self._ws is None:
            return
        self._stopped = True
        pump, receiver = self._tasks
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        if not self.closed.is_set():
            try:
                await self._send_event(
                    messages.stop(account_sid=self.account_sid, call_sid=self.call_sid)
                )
                await self._ws.close()
            except ConnectionClosed:
                pass
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
        if self._speech is not None and not self._speech.done.done():
            self._speech.done.cancel()

    # What a persona script can do (the `CallerSession` protocol).

    async def say(self, text: str, *, fraction: float = 1.0) -> None:
        spoken, audio = cut_speech(text, await self._synth.render(text), fraction)
        utterance = Utterance(
            text=text,
            spoken=spoken,
            started_ms=self._now_ms(),
            audio_ms=len(audio) // BYTES_PER_MS,
            cut=fraction < 1.0,
        )
        self.report.customer.append(utterance)
        await self._speak(audio, utterance)
        t_ms = self._chunk * FRAME_MS  # media timeline: where the utterance's audio ends
        if await self._publisher.publish(self.call_sid, spoken, t_ms):
            self.report.transcripts_published += 1

    async def play_tone(self, duration_s: float) -> None:
        await self._speak(beep(int(duration_s * 1000)), None)

    async def wait_for_bot_reply(self, timeout_s: float) -> bool:
        since = self.tracker.last_customer_end_ms or 0
        return await self._wait_until(lambda: self.tracker.replied_since(since), timeout_s)

    async def wait_for_bot_speaking(self, timeout_s: float) -> bool:
        return await self._wait_until(lambda: self.tracker.speaking, timeout_s)

    async def send_dtmf(self, digit: str) -> None:
        self._outbox.append(messages.dtmf(digit))
        self.report.dtmf_sent.append(digit)

    # Internals.

    def _now_ms(self) -> int:
        return int((asyncio.get_running_loop().time() - self._t0) * 1000)

    async def _speak(self, audio: bytes, utterance: Utterance | None) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._speech = _Speaking(audio, utterance, done)
        await done

    async def _wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                while not condition():
                    if self.closed.is_set():
                        return False
                    await self._ticked.wait()
        except TimeoutError:
            return False
        return True

    def _wake(self) -> None:
        self._ticked.set()
        self._ticked = asyncio.Event()

    async def _send_event(self, message: dict[str, object]) -> None:
        assert self._ws is not None
        self._sequence += 1
        message["sequenceNumber"] = str(self._sequence)
        message.setdefault("streamSid", self.stream_sid)
        await self._ws.send(json.dumps(message))

    async def _pump(self) -> None:
        """Every 20 ms: one inbound frame out, one frame of bot audio played."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._tick()
                await asyncio.sleep(max(0.0, self._t0 + self._chunk * _FRAME_S - loop.time()))
        except ConnectionClosed:
            self._lost()
        except Exception:  # boundary: a bug must end this stream visibly, not freeze the call
            log.exception("media_pump_failed", call_sid=self.call_sid)
            self._lost()

    async def _tick(self) -> None:
        now_ms = self._now_ms()
        outbox, self._outbox = self._outbox, []
        for message in outbox:
            await self._send_event(message)
        payload = self._next_frame(now_ms)
        self._chunk += 1
        await self._send_event(messages.media(self._chunk, payload))
        self.report.frames_sent += 1
        played, marks = self._buffer.play()
        self.tracker.on_played(now_ms, played)
        if self._speech and self._speech.utterance and played and is_voiced(played):
            self._speech.utterance.overlapped_bot = True
        for name in marks:
            await self._send_event(messages.mark(name))
            self.report.marks_echoed.append(name)
        self.tracker.tick(now_ms)
        self._wake()

    def _next_frame(self, now_ms: int) -> str:
        speech = self._speech
        if speech is None:
            return _SILENCE_B64
        frame = speech.audio[speech.position : speech.position + FRAME_BYTES]
        frame += SILENCE_FRAME[len(frame) :]
        speech.position += FRAME_BYTES
        utterance = speech.utterance
        if utterance is not None and is_voiced(frame):
            speech.last_voiced_ms = now_ms + FRAME_MS
        if speech.position >= len(speech.audio):
            self._speech = None
            if utterance is not None:
                utterance.ended_ms = now_ms + FRAME_MS
                utterance.last_word_end_ms = speech.last_voiced_ms or utterance.ended_ms
                self.tracker.on_customer_end(utterance.last_word_end_ms)
            if not speech.done.done():
                speech.done.set_result(None)
        return base64.b64encode(frame).decode("ascii")

    async def _receive(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                self._on_message(raw)
        except ConnectionClosed:
            pass
        except Exception:  # boundary, as in `_pump`
            log.exception("media_receive_failed", call_sid=self.call_sid)
        self._lost()

    def _lost(self) -> None:
        self.closed.set()
        self._wake()

    def _on_message(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            message = None
        if not isinstance(message, dict) or message.get("streamSid") != self.stream_sid:
            self._bad("not a JSON message for this stream", raw)
            return
        event = message.get("event")
        body = message.get(str(event))
        if event == "media" and isinstance(body, dict):
            self._on_media(body)
        elif event == "mark" and isinstance(body, dict) and isinstance(body.get("name"), str):
            self._buffer.add_mark(body["name"])
            self.report.marks_received.append(body["name"])
        elif event == "clear":
            dropped, marks = self._buffer.clear()
            self.tracker.on_clear(dropped)
            self.report.clears += 1
            self._outbox.extend(messages.mark(name) for name in marks)
            self.report.marks_echoed.extend(marks)
        else:
            self._bad("unknown or malformed event", raw)

    def _on_media(self, body: dict[str, object]) -> None:
        payload = body.get("payload")
        try:
            audio = base64.b64decode(payload if isinstance(payload, str) else "", validate=True)
        except binascii.Error:
            audio = b""
        if not audio:
            self._bad("media without a base64 payload", str(payload)[:40])
            return
        self._buffer.add_audio(audio)
        self.tracker.on_received(self._now_ms(), audio)
        self.report.bot_media_messages += 1
        self.report.bot_audio_ms += len(audio) // BYTES_PER_MS

    def _bad(self, why: str, raw: str | bytes) -> None:
        self.report.bad_messages += 1
        if self.report.bad_messages <= 3:
            log.warning(
                "media_worker_message_ignored",
                call_sid=self.call_sid,
                why=why,
                sample=str(raw)[:120],
            )
