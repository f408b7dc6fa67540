"""Input half: Twilio's media, dtmf, mark and stop messages become pipeline frames and events."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from typing import Any

import structlog
from pipecat.audio.utils import create_stream_resampler, ulaw_to_pcm
from pipecat.frames.frames import (
    CancelFrame,
    ClientConnectedFrame,
    EndFrame,
    EndWorkerFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_transport import TransportParams
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosedError

from media_worker import protocol
from media_worker.transport.caller_audio import CallerAudioFrame
from media_worker.transport.connection import (
    StreamCallbacks,
    StreamEnd,
    StreamEndReason,
    StreamSocket,
)
from media_worker.transport.frames import PlaybackMarkReachedFrame

log = structlog.get_logger(__name__)


class TwilioStreamInputTransport(BaseInputTransport):
    """Reads the stream from pipeline start until the socket closes or the pipeline ends.

    On start it fires `on_client_connected` and pushes a `ClientConnectedFrame`. Then `media`
    becomes a `CallerAudioFrame` (an `InputAudioRawFrame`, 8 kHz PCM decoded from the message
    already parsed; nothing at all after `ignore_caller_audio`) and `dtmf` an `InputDTMFFrame`
    (via the serializer); `mark` a `PlaybackMarkReachedFrame` plus the `on_mark` event; `stop`,
    a close or a lost connection fire `on_client_disconnected` and end the pipeline gracefully
    (`EndWorkerFrame` upstream). Malformed messages are logged and skipped.
    """

    def __init__(
        self,
        *,
        socket: StreamSocket,
        serializer: TwilioFrameSerializer,
        callbacks: StreamCallbacks,
        params: TransportParams,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, **kwargs)
        self._socket = socket
        self._serializer = serializer
        self._callbacks = callbacks
        self._resampler = create_stream_resampler()  # 8 kHz in and out: never resamples
        self._receive_task: asyncio.Task[None] | None = None
        # Set once an EndFrame or CancelFrame passed: frames pushed after it would be orphans.
        self._ending = False
        self._caller_audio_wanted = True

    def ignore_caller_audio(self) -> None:
        """Nothing in the pipeline listens to the caller's audio (the `sim` STT without a VAD
        hears the caller's words from the simulator): skip its 50 messages a second before
        they are even parsed, instead of decoding them into frames that are dropped."""
        self._caller_audio_wanted = False

    @property
    def caller_audio_ignored(self) -> bool:
        return not self._caller_audio_wanted

    # FrameProcessor itself narrows BaseObject.setup(task_manager) to this signature.
    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        await super().setup(setup)
        await self._serializer.setup(setup)

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        if self._receive_task is None:
            self._receive_task = self.create_task(self._receive(), name="twilio_stream_receive")
        await self._callbacks.connected()
        # As pipecat's own transports do: latency observers time the call from this frame.
        await self.push_frame(ClientConnectedFrame())

    async def stop(self, frame: EndFrame) -> None:
        # Keep reading while the output plays its last words: an unread socket stalls the
        # close handshake. The output closes the socket, which ends the receive loop.
        self._ending = True
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame) -> None:
        self._ending = True
        await super().cancel(frame)
        await self._stop_receiving()

    async def cleanup(self) -> None:
        await super().cleanup()  # type: ignore[no-untyped-call]  # pipecat leaves it unannotated
        await self._stop_receiving()
        await self._socket.close()
        await self._callbacks.cleanup()

    async def _stop_receiving(self) -> None:
        if self._receive_task is not None:
            await self.cancel_task(self._receive_task)
            self._receive_task = None

    async def _receive(self) -> None:
        """The connection boundary: whatever ends the stream is logged and ends the call."""
        try:
            end = await self._pump()
        except Exception as exc:  # boundary: a bug here must end the call visibly, not hang it
            log.exception("media_stream_receive_failed")
            await self.push_error(f"receiving the Twilio stream failed: {exc!r}", exception=exc)
            end = StreamEnd(StreamEndReason.RECEIVE_FAILED, detail=repr(exc))
        await self._stream_ended(end)

    async def _pump(self) -> StreamEnd:
        """Handle messages until the socket closes; how it closed, as the far end's `StreamEnd`."""
        connection = self._socket.connection
        try:
            async for message in connection:
                await self._handle(message)
        except ConnectionClosedError as exc:
            return StreamEnd(StreamEndReason.CONNECTION_LOST, _close_code(connection), str(exc))
        return StreamEnd(StreamEndReason.CLOSED, _close_code(connection))

    async def _handle(self, message: str | bytes) -> None:
        if not self._caller_audio_wanted and protocol.looks_like_media(message):
            return
        try:
            decoded = protocol.decode(message)
            event = protocol.event_name(decoded)
            mark_name = protocol.parse_mark_name(decoded) if event == "mark" else None
        except protocol.ProtocolError as exc:
            # One bad message is not worth the call, but it must be seen.
            log.warning("media_stream_message_ignored", error=str(exc), sample=str(message)[:120])
            return
        if event == "media":
            await self._push_media(decoded, message)
        elif event == "dtmf":
            await self._push_deserialized(message)
        elif mark_name is not None:
            await self._mark_reached(mark_name)
        elif event == "stop":
            # Reading goes on until the socket closes, but the call is over now.
            await self._stream_ended(StreamEnd(StreamEndReason.STOP))
        else:
            log.debug("media_stream_event_ignored", media_stream_event=event)

    def _listening(self) -> bool:
        return not self._ending and self._socket.end is None

    async def _push_media(self, decoded: Mapping[str, Any], message: str | bytes) -> None:
        """One `media` message's μ-law as 16-bit PCM, decoded as pipecat's Twilio serializer
        does but from the message already parsed (no second JSON parse 50 times a second)."""
        if not (self._caller_audio_wanted and self._listening()):
            return  # nobody is listening for its audio, or the call is over
        media = decoded.get("media")
        try:
            if not isinstance(media, Mapping):
                raise TypeError(f"media is {type(media).__name__}, not an object")
            payload = media.get("payload")
            if not payload:
                return  # as the serializer: nothing to hear
            ulaw = base64.b64decode(payload)
        except (binascii.Error, TypeError) as exc:  # bad base64; a payload that is not a string
            log.warning("media_stream_payload_ignored", error=str(exc), sample=str(message)[:120])
            return
        pcm = await ulaw_to_pcm(
            ulaw, protocol.SAMPLE_RATE_HZ, protocol.SAMPLE_RATE_HZ, self._resampler
        )
        if pcm:
            frame = CallerAudioFrame(audio=pcm, sample_rate=protocol.SAMPLE_RATE_HZ, num_channels=1)
            await self.push_audio_frame(frame)

    async def _push_deserialized(self, message: str | bytes) -> None:
        if not self._listening():
            return
        frame = await self._serializer.deserialize(message)
        if frame is not None:
            await self.push_frame(frame)

    async def _mark_reached(self, name: str) -> None:
        await self._callbacks.mark(name)
        if not self._ending:
            await self.push_frame(PlaybackMarkReachedFrame(mark_name=name))

    async def _stream_ended(self, end: StreamEnd) -> None:
        if not self._socket.record_end(end):
            return
        if end.reason in (StreamEndReason.STOP, StreamEndReason.CLOSED):
            log.info("media_stream_ended", reason=end.reason, close_code=end.close_code)
        else:
            log.warning(
                "media_stream_lost", reason=end.reason, close_code=end.close_code, detail=end.detail
            )
        await self._callbacks.disconnected(end)
        if not self._ending:
            # Upstream from the first processor reaches the worker at once; it then sends an
            # EndFrame down, so processors still flush (a final transcript, say).
            reason = f"twilio stream ended: {end.reason}"
            await self.push_frame(EndWorkerFrame(reason=reason), FrameDirection.UPSTREAM)


def _close_code(connection: ServerConnection) -> int | None:
    # A plain int: websockets reports a CloseCode enum for the codes it knows.
    code = connection.close_code
    return None if code is None else int(code)
