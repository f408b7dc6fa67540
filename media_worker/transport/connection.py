"""The call's websocket as both transport halves share it: sends, closing, and why it ended."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

import structlog
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

log = structlog.get_logger(__name__)


class StreamEndReason(StrEnum):
    """Why a Media Stream ended under us, rather than by our own choice."""

    STOP = "stop"  # Twilio sent `stop`: the call hung up or the stream was stopped
    CLOSED = "closed"  # the socket closed cleanly without a `stop`
    CONNECTION_LOST = "connection_lost"  # the socket closed abnormally (no close frame, 1011...)
    RECEIVE_FAILED = "receive_failed"  # our receive loop failed; logged with its traceback


@dataclass(frozen=True)
class StreamEnd:
    """Why the stream ended under us: the reason, and the close code once one is known."""

    reason: StreamEndReason
    close_code: int | None = None
    detail: str = ""

    @property
    def far_end_gone(self) -> bool:
        """The caller's side is gone: there is no call left for us to hang up."""
        return self.reason is not StreamEndReason.RECEIVE_FAILED


@dataclass(frozen=True)
class StreamCallbacks:
    """How the two halves reach their transport: to fire its events and to clean it up."""

    connected: Callable[[], Awaitable[None]]
    disconnected: Callable[[StreamEnd], Awaitable[None]]
    mark: Callable[[str], Awaitable[None]]
    cleanup: Callable[[], Awaitable[None]]


class StreamSocket:
    """One accepted Media Streams connection, shared by the input and output transports.

    Once the stream has ended under us (`end` is set) or we have closed it, sends are dropped
    and report False, so queued audio drains at once instead of being paced into the void.
    """

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self._end: StreamEnd | None = None
        self._closing = False

    @property
    def end(self) -> StreamEnd | None:
        """How the stream ended under us, or None while it is live or if we ended it."""
        return self._end

    @property
    def closing(self) -> bool:
        """We started closing the socket ourselves."""
        return self._closing

    def record_end(self, end: StreamEnd) -> bool:
        """Remember the first way the stream ended under us; False if already ended or closing."""
        if self._end is not None or self._closing:
            return False
        self._end = end
        return True

    async def send(self, payload: str | bytes) -> bool:
        """Send one message; False (and nothing sent) once the stream is over."""
        if self._end is not None or self._closing:
            return False
        try:
            await self.connection.send(payload)
        except ConnectionClosed as exc:
            # The receive loop sees the same close and reports it; here it only stops output.
            log.debug("media_stream_send_after_close", code=exc.rcvd.code if exc.rcvd else None)
            return False
        return True

    async def close(self) -> None:
        """Close the socket normally (idempotent); Twilio then moves past `<Connect>`."""
        if self._closing:
            return
        self._closing = True
        await self.connection.close()
