"""Signed, short-lived, single-use call tokens: the dispatcher puts one in the media stream's
`<Parameter name="token">`; the media worker checks it before it loads anything.

Wire form: `base64url(claims JSON) "." base64url(HMAC-SHA256(secret, context + claims part))`,
unpadded. Claims: `tid` token id, `aid` attempt id, `lid` lead id, `iat` issue time (unix s).
No secret and no phone number is ever a claim. The call SID does not exist yet when the token
is issued (`calls.create` returns it), so the token binds to the attempt, and the worker
checks the stream's call SID against the one recorded for that attempt.

Checks, in the order a worker runs them:
1. `verify_call_token` (pure): shape, signature (constant time), age.
2. `check_call_binding` (pure): the stream's call SID is the attempt's recorded one.
3. `CallTokenRedeemer.redeem` / `AsyncCallTokenRedeemer.redeem`: Redis `SET NX EX`, once.

CallTokenInvalid
├── TokenMalformed      not one of our tokens: shape, encoding or claims are wrong
├── TokenForged         the signature does not match (other secret, or tampered)
├── TokenExpired        older than `max_age_s`, or issued in the future past the clock skew
├── TokenCallMismatch   the stream's call SID is not the one recorded for the attempt
└── TokenReused         already redeemed once
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

import redis
import redis.asyncio

from shared import redis_keys

DEFAULT_MAX_AGE_S = 300
DEFAULT_CLOCK_SKEW_S = 30
# The used-marker must outlive every token it guards; a token dies at max age + skew.
DEFAULT_USED_MARKER_TTL_S = 2 * (DEFAULT_MAX_AGE_S + DEFAULT_CLOCK_SKEW_S)
# HMAC-SHA256 keys shorter than this are refused; production secrets should be 32 random bytes.
MIN_SECRET_BYTES = 16
MAX_TOKEN_CHARS = 1024
# Domain separation: the same secret signing something else can never yield a call token.
_CONTEXT = b"callfleet.call-token.v1."
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
_CLAIM_KEYS = frozenset({"tid", "aid", "lid", "iat"})


class CallTokenInvalid(Exception):
    """The token must not open a call. The message is safe to log (never the token)."""


class TokenMalformed(CallTokenInvalid):
    pass


class TokenForged(CallTokenInvalid):
    pass


class TokenExpired(CallTokenInvalid):
    pass


class TokenCallMismatch(CallTokenInvalid):
    pass


class TokenReused(CallTokenInvalid):
    pass


@dataclass(frozen=True)
class CallTokenClaims:
    token_id: str
    attempt_id: str
    lead_id: str
    issued_at_s: int


def issue_call_token(
    secret: bytes,
    *,
    attempt_id: str,
    lead_id: str,
    now_s: float | None = None,
    token_id: str | None = None,
) -> str:
    _check_secret(secret)
    claims = {
        "tid": token_id or secrets.token_urlsafe(16),
        "aid": attempt_id,
        "lid": lead_id,
        "iat": int(time.time() if now_s is None else now_s),
    }
    body = _b64encode(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_b64encode(_mac(secret, body))}"


def verify_call_token(
    secret: bytes,
    token: str,
    *,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    now_s: float | None = None,
    clock_skew_s: float = DEFAULT_CLOCK_SKEW_S,
) -> CallTokenClaims:
    """Return the claims of a genuine, fresh token, or raise a `CallTokenInvalid`."""
    _check_secret(secret)
    body, signature = _split(token)
    # Authenticate before parsing: untrusted JSON is never decoded.
    if not hmac.compare_digest(_mac(secret, body), signature):
        raise TokenForged("call token signature does not match")
    claims = _parse_claims(body)
    now = time.time() if now_s is None else now_s
    if claims.issued_at_s > now + clock_skew_s:
        raise TokenExpired("call token issued in the future")
    if now - claims.issued_at_s > max_age_s:
        raise TokenExpired("call token is too old")
    return claims


def check_call_binding(
    claims: CallTokenClaims, *, call_sid: str, recorded_call_sid: str | None
) -> None:
    """The stream must belong to the call the dispatcher placed for this attempt.

    `recorded_call_sid` is None while the dispatcher has not yet stored the SID that
    `calls.create` returned; a caller may re-read it for a moment before giving up."""
    if recorded_call_sid is None:
        raise TokenCallMismatch(f"no call recorded yet for attempt {claims.attempt_id}")
    if not hmac.compare_digest(call_sid.encode(), recorded_call_sid.encode()):
        raise TokenCallMismatch(f"stream call is not the call of attempt {claims.attempt_id}")


class CallTokenRedeemer:
    """Spends a token once, fleet-wide (synchronous Redis)."""

    def __init__(
        self, redis_client: redis.Redis, *, used_marker_ttl_s: int = DEFAULT_USED_MARKER_TTL_S
    ) -> None:
        self._redis = redis_client
        self._ttl_s = used_marker_ttl_s

    def redeem(self, claims: CallTokenClaims) -> None:
        key = redis_keys.call_token_used(claims.token_id)
        if not self._redis.set(key, claims.attempt_id, nx=True, ex=self._ttl_s):
            raise TokenReused(f"call token of attempt {claims.attempt_id} was already used")


class AsyncCallTokenRedeemer:
    """Spends a token once, fleet-wide, without blocking the media worker's event loop."""

    def __init__(
        self,
        redis_client: redis.asyncio.Redis,
        *,
        used_marker_ttl_s: int = DEFAULT_USED_MARKER_TTL_S,
    ) -> None:
        self._redis = redis_client
        self._ttl_s = used_marker_ttl_s

    async def redeem(self, claims: CallTokenClaims) -> None:
        key = redis_keys.call_token_used(claims.token_id)
        if not await self._redis.set(key, claims.attempt_id, nx=True, ex=self._ttl_s):
            raise TokenReused(f"call token of attempt {claims.attempt_id} was already used")


def _check_secret(secret: bytes) -> None:
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"call token secret must be at least {MIN_SECRET_BYTES} bytes")


def _mac(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, _CONTEXT + body.encode("ascii"), hashlib.sha256).digest()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenMalformed("call token is not base64url") from exc


def _split(token: str) -> tuple[str, bytes]:
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise TokenMalformed("call token is missing or too long")
    parts = token.split(".")
    if len(parts) != 2 or not all(_SEGMENT.fullmatch(part) for part in parts):
        raise TokenMalformed("call token does not have the form claims.signature")
    return parts[0], _b64decode(parts[1])


def _parse_claims(body: str) -> CallTokenClaims:
    try:
        claims = json.loads(_b64decode(body))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise TokenMalformed("call token claims are not JSON") from exc
    if not isinstance(claims, dict) or set(claims) != _CLAIM_KEYS:
        raise TokenMalformed("call token claims are not the expected set")
    texts = [claims["tid"], claims["aid"], claims["lid"]]
    if not all(isinstance(value, str) and value for value in texts):
        raise TokenMalformed("call token ids must be non-empty strings")
    issued_at = claims["iat"]
    if not isinstance(issued_at, int) or isinstance(issued_at, bool):
        raise TokenMalformed("call token issue time must be an integer")
    return CallTokenClaims(
        token_id=claims["tid"],
        attempt_id=claims["aid"],
        lead_id=claims["lid"],
        issued_at_s=issued_at,
    )
