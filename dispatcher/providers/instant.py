"""`InstantProvider`: an in-process stand-in for the carrier's cloud that places no call, for
benchmarks and the dispatcher's tests; failure knobs make it misbehave on purpose."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from dispatcher.providers.base import (
    DialRequest,
    FoundCall,
    PlacedCall,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
)


def _default_failure() -> ProviderError:
    return ProviderUnavailable("instant provider: injected failure", status_code=503)


@dataclass(frozen=True)
class InstantCall:
    """One call the provider accepted, as the carrier would remember it."""

    call_sid: str
    request: DialRequest
    created_at: datetime
    status: str = "queued"


class InstantProvider:
    """Thread-safe: several dispatcher threads may share one instance.

    `fail_first_n` dials raise `fail_with()` before any succeeds; `latency_s` is slept
    before every request, failed or not."""

    name = "instant"

    def __init__(
        self,
        *,
        fail_first_n: int = 0,
        fail_with: Callable[[], ProviderError] = _default_failure,
        latency_s: float = 0.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._failures_left = fail_first_n
        self._fail_with = fail_with
        self._latency_s = latency_s
        self._clock = clock
        self._lock = threading.Lock()
        self._calls: list[InstantCall] = []
        self._dial_attempts = 0

    @property
    def placed_calls(self) -> list[InstantCall]:
        with self._lock:
            return list(self._calls)

    @property
    def dial_attempts(self) -> int:
        """Every `place_call`, including the ones made to fail."""
        with self._lock:
            return self._dial_attempts

    def place_call(self, request: DialRequest) -> PlacedCall:
        self._pause()
        with self._lock:
            self._dial_attempts += 1
            if self._failures_left > 0:
                self._failures_left -= 1
                raise self._fail_with()
            call = InstantCall(
                call_sid="CA" + uuid.uuid4().hex, request=request, created_at=self._clock()
            )
            self._calls.append(call)
        return PlacedCall(call_sid=call.call_sid, provider=self.name)

    def hang_up(self, call_sid: str) -> None:
        self._pause()
        with self._lock:
            for index, call in enumerate(self._calls):
                if call.call_sid == call_sid:
                    self._calls[index] = replace(call, status="completed")
                    return
        # As Twilio does: ending an ended call is fine, an unknown SID is a caller's bug.
        raise ProviderRejected(
            "instant provider: no such call", status_code=404, provider_code=20404
        )

    def find_calls(self, to: str, since: datetime) -> list[FoundCall]:
        self._pause()
        with self._lock:
            matches = [c for c in self._calls if c.request.to == to and c.created_at >= since]
        return [
            FoundCall(
                call_sid=c.call_sid, status=c.status, start_time=None, created_at=c.created_at
            )
            for c in sorted(matches, key=lambda c: c.created_at, reverse=True)
        ]

    def _pause(self) -> None:
        if self._latency_s > 0:
            time.sleep(self._latency_s)
