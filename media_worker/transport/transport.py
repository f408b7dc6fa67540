"""`TwilioStreamTransport`: one pipecat transport over one accepted Media Streams websocket."""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.base_transport import BaseTransport, TransportParams
from pydantic import SecretStr
from websockets.asyncio.server import ServerConnection

from media_worker.protocol import CHANNELS, SAMPLE_RATE_HZ, StreamStart
from media_worker.transport.call_control import CallControl
from media_worker.transport.connection import StreamCallbacks, StreamEnd, StreamSocket
from media_worker.transport.input import TwilioStreamInputTransport
from media_worker.transport.output import TwilioStreamOutputTransport


@dataclass(frozen=True)
class HangUpOptions:
    """End the call over Twilio's REST API when our pipeline ends (the serializer's auto hang-up).

    `api_base_url` is the API root (scheme and host), e.g. our simulator's; None means Twilio.
    """

    auth_token: SecretStr
    api_base_url: str | None = None
    timeout_s: float = 5.0


# Each outbound `media` message carries this much audio. pipecat's default is 40 ms; every
# message costs a serialization, a socket write and a pacer sleep, so 100 ms chunks cost under
# half the CPU for the same speech (at 50 calls on one process, the difference between real
# time and a starved playout). Twilio plays what it buffered whatever the message size, and a
# barge-in's `clear` drops it all; that buffer holds at most the pacer's lead plus one chunk.
OUTBOUND_CHUNK_MS = 100


def telephony_params() -> TransportParams:
    """Audio both ways at Twilio's own 8 kHz mono (no resampling on the way out), sent in
    `OUTBOUND_CHUNK_MS` chunks."""
    return TransportParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        audio_in_sample_rate=SAMPLE_RATE_HZ,
        audio_out_sample_rate=SAMPLE_RATE_HZ,
        audio_out_10ms_chunks=OUTBOUND_CHUNK_MS // 10,
    )


class TwilioStreamTransport(BaseTransport):
    """A pipecat transport for one Twilio Media Stream whose handshake we already read.

    The server accepts the socket, reads `connected`/`start` (`protocol.read_handshake`),
    then builds this on the connection and puts `input()` and `output()` in the pipeline.

    Events (register with `@transport.event_handler(name)`):

    - `on_client_connected(transport, start: StreamStart)`: the pipeline started reading.
    - `on_client_disconnected(transport, end: StreamEnd)`: the stream ended under us (`stop`,
      a close, a lost connection, or our receive loop failing). The transport then ends the
      pipeline gracefully (an EndFrame that flushes); a session that cannot wait for the
      flush calls `worker.cancel()`. Not fired when we end the call ourselves.
    - `on_mark(transport, name: str)`: Twilio echoed a mark (see `PlaybackMarkReachedFrame`).

    After the run, `stream_end` tells a caller's hang-up from ours (None).

    `hang_up` is required on purpose: with options, ending the pipeline also ends the call
    over REST; with None, we only close the socket and Twilio goes on with the TwiML after
    `<Connect>` (hanging up if there is none). With options, `call_control` reaches the live
    call over REST, and `transfer_on_end(number)` makes the pipeline's end hand the call to
    `number` instead of hanging it up (`transferred` then says whether that worked).
    """

    def __init__(
        self,
        connection: ServerConnection,
        start: StreamStart,
        *,
        hang_up: HangUpOptions | None,
        params: TransportParams | None = None,
        playout_lead_s: float = 0.2,
        mark_utterances: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        self._start = start
        self._socket = StreamSocket(connection)
        params = _checked_params(params or telephony_params())
        serializer = _serializer(start, hang_up)
        self._call_control = None if hang_up is None else call_control_for(start, hang_up)
        callbacks = StreamCallbacks(
            connected=self._connected,
            disconnected=self._disconnected,
            mark=self._mark,
            cleanup=self.cleanup,
        )
        self._input = TwilioStreamInputTransport(
            socket=self._socket,
            serializer=serializer,
            callbacks=callbacks,
            params=params,
            name=f"{self.name}#input",
        )
        self._output = TwilioStreamOutputTransport(
            socket=self._socket,
            serializer=serializer,
            stream_sid=start.stream_sid,
            callbacks=callbacks,
            params=params,
            playout_lead_s=playout_lead_s,
            mark_utterances=mark_utterances,
            hang_up_timeout_s=hang_up.timeout_s if hang_up else None,
            call_control=self._call_control,
            name=f"{self.name}#output",
        )
        # BaseObject's hook for subclasses: these are the only events users may register.
        self._register_event_handler("on_client_connected")
        self._register_event_handler("on_client_disconnected")
        self._register_event_handler("on_mark")

    @property
    def start(self) -> StreamStart:
        """The stream's `start`, as read in the handshake."""
        return self._start

    @property
    def stream_end(self) -> StreamEnd | None:
        """How the stream ended under us; None while it is live or when we ended the call."""
        return self._socket.end

    @property
    def call_control(self) -> CallControl | None:
        """The live call over REST; None without `hang_up` options."""
        return self._call_control

    @property
    def transferred(self) -> bool | None:
        """After a requested transfer: whether the carrier took it; None if none was tried."""
        return self._output.transferred

    def transfer_on_end(self, number: str) -> None:
        """End the pipeline by handing the call to `number` (E.164) instead of hanging up.

        Call it before the pipeline ends (the goodbye may still be playing). Without
        `hang_up` options there is no way to reach the call, and ValueError is raised.
        """
        if self._call_control is None:
            raise ValueError("a transfer needs hang_up options (the call's REST access)")
        self._output.transfer_on_end(number)

    def ignore_caller_audio(self) -> None:
        """Call before the pipeline runs when none of its processors hears the caller's audio
        (see `TwilioStreamInputTransport.ignore_caller_audio`)."""
        self._input.ignore_caller_audio()

    @property
    def caller_audio_ignored(self) -> bool:
        return self._input.caller_audio_ignored

    def input(self) -> TwilioStreamInputTransport:
        return self._input

    def output(self) -> TwilioStreamOutputTransport:
        return self._output

    async def _connected(self) -> None:
        await self._call_event_handler("on_client_connected", self._start)

    async def _disconnected(self, end: StreamEnd) -> None:
        await self._call_event_handler("on_client_disconnected", end)

    async def _mark(self, name: str) -> None:
        await self._call_event_handler("on_mark", name)


def _checked_params(params: TransportParams) -> TransportParams:
    """The caller's params pinned to 8 kHz mono without end silence, refusing settings Twilio
    cannot carry."""
    if not (params.audio_in_enabled and params.audio_out_enabled):
        raise ValueError("a Twilio stream carries audio both ways: enable audio in and out")
    for setting in ("audio_in_sample_rate", "audio_out_sample_rate"):
        rate = getattr(params, setting)
        if rate not in (None, SAMPLE_RATE_HZ):
            raise ValueError(f"{setting} must be {SAMPLE_RATE_HZ} (Twilio's rate), got {rate}")
    if (params.audio_in_channels, params.audio_out_channels) != (CHANNELS, CHANNELS):
        raise ValueError("Twilio streams are mono: audio_in_channels/audio_out_channels must be 1")
    pinned = {
        "audio_in_sample_rate": SAMPLE_RATE_HZ,
        "audio_out_sample_rate": SAMPLE_RATE_HZ,
        # pipecat's end silence (2 s by default) is written as one frame, bypassing the
        # chunking: one 2 s media message at every call's end, and the pacer holding the
        # hang-up for it. The output waits for its last audio to play out instead.
        "audio_out_end_silence_secs": 0,
    }
    return params.model_copy(update=pinned)


def call_control_for(start: StreamStart, hang_up: HangUpOptions) -> CallControl:
    """REST access to the call whose stream started with `start`."""
    return CallControl(
        account_sid=start.account_sid,
        call_sid=start.call_sid,
        auth_token=hang_up.auth_token.get_secret_value(),
        api_base_url=hang_up.api_base_url,
        timeout_s=hang_up.timeout_s,
    )


def _serializer(start: StreamStart, hang_up: HangUpOptions | None) -> TwilioFrameSerializer:
    # `sample_rate` pins inbound audio to 8 kHz; left unset, the serializer would resample to
    # the pipeline's default input rate (16 kHz).
    serializer_params = TwilioFrameSerializer.InputParams(
        twilio_sample_rate=SAMPLE_RATE_HZ,
        sample_rate=SAMPLE_RATE_HZ,
        auto_hang_up=hang_up is not None,
    )
    return TwilioFrameSerializer(
        stream_sid=start.stream_sid,
        call_sid=start.call_sid,
        account_sid=start.account_sid,
        auth_token=hang_up.auth_token.get_secret_value() if hang_up else None,
        base_url=hang_up.api_base_url if hang_up else None,
        params=serializer_params,
    )
