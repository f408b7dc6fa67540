"""Failure knobs for tests: failed REST calls, slow creates, duplicate or reordered callbacks.

Set at start-up from `SimulatorSettings` and at run time with `POST /_sim/faults`, e.g.
`{"fail_next_creates": [500, 429, {"status": 400, "code": 21215}], "reorder_callbacks": true}`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from simulator.errors import TwilioApiError

_DEFAULT_ERRORS: dict[int, tuple[int, str]] = {
    400: (20001, "Invalid parameter"),
    401: (20003, "Authenticate"),
    403: (20403, "Forbidden"),
    404: (20404, "The requested resource was not found"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


def twilio_error(
    status: int, code: int | None = None, message: str | None = None
) -> TwilioApiError:
    default_code, default_message = _DEFAULT_ERRORS.get(
        status, (20500 if status >= 500 else 20001, "Injected failure")
    )
    return TwilioApiError(status, code or default_code, message or default_message)


def _error_from(spec: object) -> TwilioApiError:
    if isinstance(spec, bool) or not isinstance(spec, int | dict):
        raise ValueError(f"a failure is an HTTP status or {{status, code, message}}: {spec!r}")
    status: object
    code: object
    message: object
    if isinstance(spec, int):
        status, code, message = spec, None, None
    else:
        status, code, message = spec.get("status"), spec.get("code"), spec.get("message")
    if not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"failure status must be 400..599: {spec!r}")
    if code is not None and not isinstance(code, int):
        raise ValueError(f"failure code must be an integer: {spec!r}")
    return twilio_error(status, code, message if isinstance(message, str) else None)


@dataclass
class Faults:
    fail_next_creates: deque[TwilioApiError] = field(default_factory=deque)
    fail_next_updates: deque[TwilioApiError] = field(default_factory=deque)
    create_latency_ms: int = 0
    duplicate_callbacks: bool = False
    reorder_callbacks: bool = False

    def apply(self, body: Mapping[str, object]) -> None:
        """Merge a `POST /_sim/faults` body (lists append); ValueError, and no change at all,
        when any part is malformed."""
        unknown = set(body) - {
            "fail_next_creates",
            "fail_next_updates",
            "create_latency_ms",
            "duplicate_callbacks",
            "reorder_callbacks",
        }
        if unknown:
            raise ValueError(f"unknown fault knobs: {sorted(unknown)}")
        failures: dict[str, list[TwilioApiError]] = {}
        for name in ("fail_next_creates", "fail_next_updates"):
            specs = body.get(name, [])
            if not isinstance(specs, list):
                raise ValueError(f"{name} must be a list")
            failures[name] = [_error_from(spec) for spec in specs]
        latency = body.get("create_latency_ms", self.create_latency_ms)
        if isinstance(latency, bool) or not isinstance(latency, int) or latency < 0:
            raise ValueError("create_latency_ms must be a non-negative integer")
        flags = {
            flag: body.get(flag, getattr(self, flag))
            for flag in ("duplicate_callbacks", "reorder_callbacks")
        }
        if not all(isinstance(value, bool) for value in flags.values()):
            raise ValueError("duplicate_callbacks and reorder_callbacks must be true or false")
        self.fail_next_creates.extend(failures["fail_next_creates"])
        self.fail_next_updates.extend(failures["fail_next_updates"])
        self.create_latency_ms = latency
        self.duplicate_callbacks = bool(flags["duplicate_callbacks"])
        self.reorder_callbacks = bool(flags["reorder_callbacks"])

    def reset(self) -> None:
        self.fail_next_creates.clear()
        self.fail_next_updates.clear()
        self.create_latency_ms = 0
        self.duplicate_callbacks = False
        self.reorder_callbacks = False

    def as_json(self) -> dict[str, object]:
        return {
            "fail_next_creates": [e.body() for e in self.fail_next_creates],
            "fail_next_updates": [e.body() for e in self.fail_next_updates],
            "create_latency_ms": self.create_latency_ms,
            "duplicate_callbacks": self.duplicate_callbacks,
            "reorder_callbacks": self.reorder_callbacks,
        }
