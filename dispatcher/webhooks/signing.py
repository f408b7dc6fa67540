"""Merchant webhook signatures: HMAC-SHA256 over `"{timestamp}." + body`, sent as
`X-Callfleet-Signature: v1=<hex>` beside `X-Callfleet-Timestamp: <unix seconds>`.

Binding the timestamp into the MAC lets a receiver refuse replays older than its tolerance.
`verify` is what a merchant (or our docs and tests) runs on the receiving side.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Callfleet-Signature"
TIMESTAMP_HEADER = "X-Callfleet-Timestamp"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `f"{timestamp}.".encode() + body` under `secret`."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_headers(secret: str, body: bytes, *, now_s: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now_s is None else now_s)
    return {
        SIGNATURE_HEADER: f"{SCHEME}={sign(secret, timestamp, body)}",
        TIMESTAMP_HEADER: str(timestamp),
    }


def verify(
    secret: str,
    timestamp: int | str,
    body: bytes,
    signature: str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now_s: float | None = None,
) -> bool:
    """True if `signature` (the header value; several comma-separated `v1=` entries are
    accepted, for secret rotation) signs this body at this timestamp, within tolerance."""
    try:
        issued_s = int(timestamp)
    except (TypeError, ValueError):
        return False
    now = time.time() if now_s is None else now_s
    if abs(now - issued_s) > tolerance_s:
        return False
    expected = sign(secret, issued_s, body)
    candidates = [
        value.strip()
        for scheme, _, value in (part.strip().partition("=") for part in signature.split(","))
        if scheme == SCHEME
    ]
    # Compare against every candidate so the time taken does not reveal which one matched.
    matches = [hmac.compare_digest(expected.encode(), c.encode()) for c in candidates]
    return any(matches)
