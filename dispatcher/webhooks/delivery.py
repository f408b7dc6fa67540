"""One signed webhook POST to a merchant, classified as delivered, retry later, or give up;
and the backoff between tries. The Celery task around it owns the outbox row."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

import httpx

from dispatcher.webhooks.signing import signature_headers
from dispatcher.webhooks.urls import Resolver, UrlVerdict, check_webhook_url, resolve_host

USER_AGENT = "callfleet-webhooks/1"
MAX_RETRY_AFTER_S = 3600.0


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"  # 408, 429, 5xx, network trouble, DNS not answering
    GIVE_UP = "give_up"  # other 4xx, redirects, a URL our policy refuses


@dataclass(frozen=True)
class DeliveryResult:
    """`detail` is short and safe to store as the outbox row's last error."""

    outcome: DeliveryOutcome
    status_code: int | None
    detail: str
    retry_after_s: float | None = None


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """Compact, key-sorted JSON: the exact bytes that are signed and sent."""
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.encode()


def deliver(
    url: str,
    secret: str,
    payload: Mapping[str, Any],
    *,
    client: httpx.Client,
    timeout_s: float,
    now_s: float | None = None,
    allow_insecure: bool = False,
    resolve: Resolver = resolve_host,
) -> DeliveryResult:
    """POST `payload` signed with `secret`. Never raises for anything the receiver or the
    network does; the result says what to do next."""
    decision = check_webhook_url(url, allow_insecure=allow_insecure, resolve=resolve)
    if not decision.allowed:
        outcome = (
            DeliveryOutcome.RETRY
            if decision.verdict is UrlVerdict.UNRESOLVABLE
            else DeliveryOutcome.GIVE_UP
        )
        return DeliveryResult(outcome, None, f"url {decision.verdict}: {decision.reason}")
    body = encode_body(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signature_headers(secret, body, now_s=now_s),
    }
    target, host_headers, extensions = _pinned(urlsplit(url), decision.addresses[0])
    try:
        # Streamed so that the receiver's body is never read: only its status matters.
        with client.stream(
            "POST",
            target,
            content=body,
            headers={**headers, **host_headers},
            extensions=extensions,
            timeout=timeout_s,
            follow_redirects=False,
        ) as response:
            return classify_response(response.status_code, response.headers.get("Retry-After"))
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return DeliveryResult(DeliveryOutcome.GIVE_UP, None, f"unusable url ({type(exc).__name__})")
    except httpx.HTTPError as exc:  # timeouts, refused or reset connections, TLS failures
        return DeliveryResult(DeliveryOutcome.RETRY, None, f"network error ({type(exc).__name__})")


def classify_response(status_code: int, retry_after: str | None = None) -> DeliveryResult:
    if 200 <= status_code < 300:
        return DeliveryResult(DeliveryOutcome.DELIVERED, status_code, "ok")
    if status_code in (408, 429) or status_code >= 500:
        return DeliveryResult(
            DeliveryOutcome.RETRY, status_code, f"http {status_code}", _seconds(retry_after)
        )
    if 300 <= status_code < 400:
        return DeliveryResult(
            DeliveryOutcome.GIVE_UP, status_code, f"http {status_code}: redirects are not followed"
        )
    return DeliveryResult(DeliveryOutcome.GIVE_UP, status_code, f"http {status_code}")


def retry_delay_s(
    attempt: int, *, base_s: float = 5, cap_s: float = 3600, rng: random.Random
) -> float:
    """Full-jitter exponential backoff before try `attempt + 1`, where `attempt` (>= 1) tries
    have failed: uniform in [0, min(cap_s, base_s * 2 ** (attempt - 1))]."""
    exponent = min(max(attempt - 1, 0), 62)  # 2**62 * base already exceeds any cap
    return rng.uniform(0, min(cap_s, base_s * 2**exponent))


def _pinned(url: SplitResult, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """Aim the request at the address the policy approved, keeping the name for the Host
    header and TLS (SNI and certificate check), so a second DNS answer cannot redirect it."""
    port = f":{url.port}" if url.port is not None else ""
    pinned = f"[{address}]" if ":" in address else address
    target = urlunsplit((url.scheme, pinned + port, url.path or "/", url.query, ""))
    hostname = url.hostname or ""
    # Headers and SNI are ASCII: internationalised names go in their IDNA form.
    ascii_host = hostname if hostname.isascii() else hostname.encode("idna").decode("ascii")
    host_header = (f"[{ascii_host}]" if ":" in ascii_host else ascii_host) + port
    extensions: dict[str, Any] = {}
    if url.scheme == "https":
        extensions["sni_hostname"] = ascii_host
    # One connection per delivery: a pooled connection to this address was verified for
    # the name it was opened for, which may be another merchant's on a shared IP.
    return target, {"Host": host_header, "Connection": "close"}, extensions


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in its delay-seconds form; the HTTP-date form is rare enough to ignore."""
    if retry_after is None or not retry_after.strip().isdigit():
        return None
    return min(float(retry_after.strip()), MAX_RETRY_AFTER_S)
