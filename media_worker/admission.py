"""Admission at the socket: read `connected`/`start`, then check the signed call token
(signature, age, the call it belongs to, single use) before anything about the lead loads.

A refused socket is closed with 1008 (policy violation) and the reason, never the token.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from websockets.asyncio.server import ServerConnection

from media_worker.protocol import ProtocolError, StreamStart, read_handshake
from shared.call_tokens import (
    AsyncCallTokenRedeemer,
    CallTokenClaims,
    CallTokenInvalid,
    TokenCallMismatch,
    TokenMalformed,
    check_call_binding,
    verify_call_token,
)

log = structlog.get_logger(__name__)

# The dispatcher stores the call SID right after the carrier answers the dial request; a
# stream that starts in that moment waits for it this long before being refused.
SID_WAIT_S = 2.0
SID_POLL_S = 0.1

RecordedSid = Callable[[uuid.UUID], Awaitable[str | None]]


@dataclass(frozen=True)
class Admitted:
    start: StreamStart
    claims: CallTokenClaims

    @property
    def attempt_id(self) -> uuid.UUID:
        return uuid.UUID(self.claims.attempt_id)


class Refused(Exception):
    """The socket is not a call this worker may take; `reason` is safe to log and send."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _recorded_sid(recorded_sid: RecordedSid, attempt_id: uuid.UUID) -> str | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SID_WAIT_S
    while True:
        sid = await recorded_sid(attempt_id)
        if sid is not None or loop.time() >= deadline:
            return sid
        await asyncio.sleep(SID_POLL_S)


async def admit(
    connection: ServerConnection,
    *,
    secret: bytes,
    max_age_s: float,
    handshake_timeout_s: float,
    recorded_sid: RecordedSid,
    redeemer: AsyncCallTokenRedeemer,
) -> Admitted:
    """The admitted stream, or Refused. Order matters: the cheap signature check comes
    before the database, and the token is spent last, only for a stream that qualifies."""
    try:
        start = await read_handshake(connection, timeout_s=handshake_timeout_s)
    except ProtocolError as exc:
        raise Refused(f"handshake: {exc}") from exc
    token = start.custom_parameters.get("token")
    try:
        if not token:
            raise TokenMalformed("no call token in customParameters")
        claims = verify_call_token(secret, token, max_age_s=max_age_s)
        attempt_id = uuid.UUID(claims.attempt_id)
        sid = await _recorded_sid(recorded_sid, attempt_id)
        check_call_binding(claims, call_sid=start.call_sid, recorded_call_sid=sid)
        await redeemer.redeem(claims)
    except (CallTokenInvalid, ValueError) as exc:
        kind = type(exc).__name__ if not isinstance(exc, TokenCallMismatch) else "call mismatch"
        raise Refused(f"call token refused ({kind})") from exc
    return Admitted(start, claims)
