"""The call-provider contract admission codes against, and the one provider error tree.

ProviderError                  any failure talking to a carrier; `retryable` says what to do
├── ProviderUnavailable        retryable: timeout, connection error, 5xx, 408, 429
│   └── DialOutcomeUnknown     retryable, but the dial request may have reached the carrier
│                              (read timeout, 502/504): reconcile with `find_calls` before
│                              dialing the lead again, exactly as after a dispatcher crash
├── InvalidDestination         permanent: this number can never be called (Twilio 21211,
│                              21214, 21215, 21216, 21217, 21610)
└── ProviderRejected           permanent: any other 4xx (credentials, bad request, ...)

Messages never hold a phone number in clear or a credential: carriers echo the `To` number
in their error text, so adapters mask it before raising.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Protocol
from urllib.parse import urlsplit

from shared.phones import mask_phone

# Twilio accepts ring timeouts in this range (seconds); outside it the API answers 400.
MIN_RING_TIMEOUT_S = 5
MAX_RING_TIMEOUT_S = 600

# Carrier error codes that mean "this destination can never be called", not "try later".
INVALID_DESTINATION_CODES = frozenset(
    {
        21211,  # invalid 'To' number
        21214,  # 'To' number cannot be reached
        21215,  # geographic permission: international calling not enabled
        21216,  # call blocked by geographic permissions / high-risk number
        21217,  # not a valid phone number
        21610,  # recipient unsubscribed (STOP)
    }
)

# Call statuses after which nothing more happens to a call.
FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


class ProviderError(Exception):
    """A carrier call failed. `status_code` is the HTTP status (None: transport failure),
    `provider_code` the carrier's own error code when it sent one."""

    def __init__(
        self, message: str, *, status_code: int | None = None, provider_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.provider_code = provider_code

    @property
    def retryable(self) -> bool:
        """Transport failures, 5xx, 408 and 429 pass with time; other 4xx never will."""
        return is_retryable_status(self.status_code)


class ProviderUnavailable(ProviderError):
    @property
    def retryable(self) -> bool:
        return True


class DialOutcomeUnknown(ProviderUnavailable):
    """The request may have been acted on; a blind redial could ring the customer twice."""


class InvalidDestination(ProviderError):
    @property
    def retryable(self) -> bool:
        return False


class ProviderRejected(ProviderError):
    @property
    def retryable(self) -> bool:
        return False


def is_retryable_status(status_code: int | None) -> bool:
    if status_code is None:
        return True
    return status_code >= 500 or status_code in (408, 429)


def error_for_response(
    status_code: int, provider_code: int | None, message: str
) -> ProviderUnavailable | InvalidDestination | ProviderRejected:
    """Pick the error type for a carrier's non-2xx answer."""
    if is_retryable_status(status_code):
        return ProviderUnavailable(message, status_code=status_code, provider_code=provider_code)
    if provider_code in INVALID_DESTINATION_CODES:
        return InvalidDestination(message, status_code=status_code, provider_code=provider_code)
    return ProviderRejected(message, status_code=status_code, provider_code=provider_code)


@dataclass(frozen=True)
class DialRequest:
    """One outbound dial. `stream_parameters` travel as TwiML `<Parameter>` elements (Twilio
    strips query strings from Stream URLs), so the stream URL must not carry a query."""

    to: str
    from_: str
    stream_url: str
    stream_parameters: Mapping[str, str]
    status_callback_url: str
    ring_timeout_s: int
    machine_detection: bool = False
    # With detection on: report the machine only after its greeting's beep, so a message
    # left for it is not spoken over the greeting (Twilio's `DetectMessageEnd`).
    wait_for_beep: bool = False

    def __post_init__(self) -> None:
        stream = urlsplit(self.stream_url)
        if stream.scheme not in ("wss", "ws") or not stream.netloc:
            raise ValueError("stream_url must be an absolute ws:// or wss:// URL")
        if stream.query or stream.fragment:
            raise ValueError(
                "stream_url must not carry a query or fragment: Twilio drops it; "
                "pass values as stream_parameters"
            )
        if not MIN_RING_TIMEOUT_S <= self.ring_timeout_s <= MAX_RING_TIMEOUT_S:
            raise ValueError(
                f"ring_timeout_s must be within {MIN_RING_TIMEOUT_S}..{MAX_RING_TIMEOUT_S}"
            )
        # A read-only copy: the caller's dict can change after the request is built.
        object.__setattr__(
            self, "stream_parameters", MappingProxyType(dict(self.stream_parameters))
        )

    def __repr__(self) -> str:
        # Parameters hold the call token and `to` is a customer's number: neither in logs.
        return (
            f"DialRequest(to={mask_phone(self.to)!r}, from_={mask_phone(self.from_)!r}, "
            f"stream_url={self.stream_url!r}, "
            f"stream_parameters=<{', '.join(sorted(self.stream_parameters))}>, "
            f"ring_timeout_s={self.ring_timeout_s}, machine_detection={self.machine_detection}, "
            f"wait_for_beep={self.wait_for_beep})"
        )


@dataclass(frozen=True)
class PlacedCall:
    call_sid: str
    provider: str


@dataclass(frozen=True)
class FoundCall:
    """A call the carrier knows about. `start_time` is None until the call is dialed."""

    call_sid: str
    status: str
    start_time: datetime | None
    created_at: datetime | None = field(default=None)

    @property
    def ended(self) -> bool:
        return self.status in FINAL_CALL_STATUSES


class CallProvider(Protocol):
    """What the dispatcher needs from a carrier. Implementations are synchronous (they run
    in Celery workers) and raise only `ProviderError` subclasses."""

    @property
    def name(self) -> str: ...

    def place_call(self, request: DialRequest) -> PlacedCall: ...

    def hang_up(self, call_sid: str) -> None:
        """End the call whatever its state; ending an ended call is not an error."""
        ...

    def find_calls(self, to: str, since: datetime) -> list[FoundCall]:
        """Calls to `to` created at or after `since` (timezone-aware), newest first."""
        ...
