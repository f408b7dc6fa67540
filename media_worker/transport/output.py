"""Output half: pipeline audio to paced Twilio `media`, interruptions to `clear`, marks, hang-up."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import structlog
from pipecat.frames.frames import (
    BotSpeakingFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    StartFrame,
    TTSStoppedFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

from media_worker import protocol
from media_worker.transport.call_control import CallControl, CallControlError
from media_worker.transport.connection import StreamCallbacks, StreamSocket
from media_worker.transport.frames import PlaybackMarkFrame
from media_worker.transport.pacing import PlayoutPacer

log = structlog.get_logger(__name__)

# Marks the output adds after each TTS utterance: this prefix, then the TTS context id.
UTTERANCE_MARK_PREFIX = "utterance:"

# pipecat's output broadcasts a `BotSpeakingFrame` both ways every 0.2 s of speech; each one
# crosses every processor of the call (both TTS branches of the switcher included), and with
# an observer a queue hop at each: half of all frames a call pushes. Nothing in a call's
# pipeline acts on it (its started and stopped frames carry the turn-taking), and a
# keep-alive needs no more than one a second. The period runs across utterances: one that
# starts within a second of the last announcement is first announced when the second is up.
BOT_SPEAKING_PERIOD_S = 1.0


class TwilioStreamOutputTransport(BaseOutputTransport):
    """Writes the pipeline's output to the stream.

    pipecat's `BaseOutputTransport` resamples audio to 8 kHz and cuts it into chunks of
    `audio_out_10ms_chunks` x 10 ms; this class sends each chunk as one `media` message and
    paces the sends to real time plus `playout_lead_s`. An `InterruptionFrame` sends `clear`.
    A `PlaybackMarkFrame` becomes a `mark` once the audio ahead of it is sent, and with
    `mark_utterances` one follows every TTS utterance, named `utterance:<context id>`.
    """

    def __init__(
        self,
        *,
        socket: StreamSocket,
        serializer: TwilioFrameSerializer,
        stream_sid: str,
        callbacks: StreamCallbacks,
        params: TransportParams,
        playout_lead_s: float,
        mark_utterances: bool,
        hang_up_timeout_s: float | None,
        call_control: CallControl | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, **kwargs)
        self._socket = socket
        self._serializer = serializer
        self._stream_sid = stream_sid
        self._callbacks = callbacks
        self._pacer = PlayoutPacer(playout_lead_s)
        self._mark_utterances = mark_utterances
        self._hang_up_timeout_s = hang_up_timeout_s
        self._utterance_numbers = itertools.count(1)
        self._call_control = call_control
        self._transfer_to: str | None = None
        self.transferred: bool | None = None
        self._bot_speaking_sent_at = -BOT_SPEAKING_PERIOD_S

    def transfer_on_end(self, number: str) -> None:
        """At the pipeline's end, hand the call to `number` rather than hang it up."""
        self._transfer_to = number

    # FrameProcessor itself narrows BaseObject.setup(task_manager) to this signature.
    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        await super().setup(setup)
        await self._serializer.setup(setup)

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)  # returns once the queued audio is sent
        if self._socket.end is None:
            # Let the last words play out at Twilio before the hang-up or close cuts them
            # (instead of pipecat's end silence: see `_checked_params` in transport.py).
            await self._pacer.drain()
        await self._finish(frame)

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._finish(frame)

    async def cleanup(self) -> None:
        await super().cleanup()  # type: ignore[no-untyped-call]  # pipecat leaves it unannotated
        await self._socket.close()
        await self._callbacks.cleanup()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            # pipecat has dropped the audio it still held; Twilio must drop what it buffered.
            self._pacer.reset()
            await self._send_serialized(frame)
        elif (
            self._mark_utterances
            and isinstance(frame, TTSStoppedFrame)
            and direction is FrameDirection.DOWNSTREAM
        ):
            # Queued right behind the TTSStoppedFrame, so it leaves after the last audio.
            mark = PlaybackMarkFrame(mark_name=self._utterance_mark_name(frame))
            await super().process_frame(mark, direction)

    async def broadcast_frame(self, frame_cls: type[Frame], **kwargs: Any) -> None:
        if frame_cls is BotSpeakingFrame:
            now = time.monotonic()
            if now - self._bot_speaking_sent_at < BOT_SPEAKING_PERIOD_S:
                return
            self._bot_speaking_sent_at = now
        await super().broadcast_frame(frame_cls, **kwargs)

    async def send_message(
        self, frame: OutputTransportMessageFrame | OutputTransportMessageUrgentFrame
    ) -> None:
        await self._send_serialized(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if not await self._send_serialized(frame):
            return False
        bytes_per_s = 2 * frame.num_channels * frame.sample_rate  # 16-bit PCM
        await self._pacer.sent(len(frame.audio) / bytes_per_s)
        return True

    async def write_transport_frame(self, frame: Frame) -> None:
        if isinstance(frame, PlaybackMarkFrame):
            await self._socket.send(protocol.mark_message(self._stream_sid, frame.mark_name))

    async def _send_serialized(self, frame: Frame) -> bool:
        payload = await self._serializer.serialize(frame)
        if payload is None:  # nothing to send for this frame, which still counts as taken
            return True
        return await self._socket.send(payload)

    async def _finish(self, frame: EndFrame | CancelFrame) -> None:
        """Transfer or hang up (if configured) unless the far end already hung up, then close
        the socket. Both happen before the close: with Twilio, a closed stream moves on past
        `<Connect>`, which ends the call before a transfer could reach it."""
        end = self._socket.end
        far_end_gone = end is not None and end.far_end_gone
        if self._transfer_to is not None and not far_end_gone and await self._transfer():
            await self._socket.close()
            return
        if self._hang_up_timeout_s is not None and not far_end_gone:
            try:
                # With auto_hang_up the serializer ends the call over Twilio's REST API here.
                # Bounded: its HTTP session would otherwise wait minutes on a stuck API.
                await asyncio.wait_for(
                    self._serializer.serialize(frame), timeout=self._hang_up_timeout_s
                )
            except TimeoutError:
                log.warning("twilio_hang_up_timed_out", timeout_s=self._hang_up_timeout_s)
        await self._socket.close()

    async def _transfer(self) -> bool:
        """Hand the call over once (EndFrame and CancelFrame may both pass); False if it failed,
        so that the caller is hung up rather than left on a silent line."""
        if self.transferred is not None or self._call_control is None or not self._transfer_to:
            return bool(self.transferred)
        try:
            # Bounded as the hang-up is: a stuck API must not hold the call's end.
            timeout_s = self._hang_up_timeout_s or 5.0
            await asyncio.wait_for(self._call_control.transfer(self._transfer_to), timeout_s)
        except (CallControlError, TimeoutError) as exc:
            log.warning("twilio_transfer_failed", error=str(exc) or type(exc).__name__)
            self.transferred = False
            return False
        log.info("twilio_call_transferred")
        self.transferred = True
        return True

    def _utterance_mark_name(self, frame: TTSStoppedFrame) -> str:
        return f"{UTTERANCE_MARK_PREFIX}{frame.context_id or next(self._utterance_numbers)}"
