"""Call records and their state machine: Twilio's statuses, the allowed moves, the registry."""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from simulator.errors import SimulatorError
from simulator.personas import Persona
from simulator.report import CallReport
from simulator.twiml import Verb


class CallStatus(StrEnum):
    QUEUED = "queued"
    INITIATED = "initiated"  # a callback status only; the resource still says `queued`
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES

    @property
    def callback_event(self) -> str:
        """The `StatusCallbackEvent` name that subscribes to this status."""
        if self is CallStatus.IN_PROGRESS:
            return "answered"
        return "completed" if self.is_final else self.value


FINAL_STATUSES = frozenset(
    {
        CallStatus.COMPLETED,
        CallStatus.BUSY,
        CallStatus.FAILED,
        CallStatus.NO_ANSWER,
        CallStatus.CANCELED,
    }
)
_UNANSWERED_ENDS = {CallStatus.BUSY, CallStatus.FAILED, CallStatus.NO_ANSWER, CallStatus.CANCELED}
_MOVES: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.QUEUED: frozenset({CallStatus.INITIATED, *_UNANSWERED_ENDS}),
    CallStatus.INITIATED: frozenset({CallStatus.RINGING, *_UNANSWERED_ENDS}),
    CallStatus.RINGING: frozenset({CallStatus.IN_PROGRESS, *_UNANSWERED_ENDS}),
    CallStatus.IN_PROGRESS: frozenset({CallStatus.COMPLETED, CallStatus.FAILED}),
}


class InvalidTransition(SimulatorError):
    def __init__(self, sid: str, current: CallStatus, wanted: CallStatus) -> None:
        super().__init__(f"call {sid}: {current} cannot become {wanted}")
        self.sid = sid
        self.current = current
        self.wanted = wanted


def new_sid(prefix: str) -> str:
    """Twilio-shaped SID: two letters and 32 hex digits (`CA…` calls, `MZ…` streams)."""
    return prefix + secrets.token_hex(16)


@dataclass(frozen=True)
class CallRequest:
    """A validated create request."""

    to: str
    from_: str
    verbs: tuple[Verb, ...] | None  # inline Twiml; None when the TwiML comes from `url`
    url: str | None
    method: str
    status_callback: str | None
    status_callback_method: str
    callback_events: frozenset[str]
    timeout_s: int
    machine_detection: str | None


@dataclass(eq=False)
class Call:
    sid: str
    account_sid: str
    request: CallRequest
    persona: Persona
    report: CallReport
    status: CallStatus = CallStatus.QUEUED
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    started_at: datetime | None = None
    ended_at: datetime | None = None
    answered_monotonic: float | None = None
    duration_s: int | None = None
    answered_by: str | None = None
    callback_sequence: int = 0
    hangup_requested: bool = False
    redirect_verbs: tuple[Verb, ...] | None = None
    interrupted: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def api_status(self) -> CallStatus:
        return CallStatus.QUEUED if self.status is CallStatus.INITIATED else self.status

    def move(self, status: CallStatus) -> None:
        if status not in _MOVES.get(self.status, frozenset()):
            raise InvalidTransition(self.sid, self.status, status)
        now = datetime.now(UTC)
        self.status, self.updated_at = status, now
        if status is CallStatus.RINGING:
            self.started_at = now
        elif status is CallStatus.IN_PROGRESS:
            self.answered_monotonic = time.monotonic()
        if status.is_final:
            self.ended_at = now
            if self.started_at is None:
                self.started_at = now
            if self.answered_monotonic is not None:
                self.duration_s = math.ceil(time.monotonic() - self.answered_monotonic)
            else:
                self.duration_s = 0
            self.finished.set()

    def request_hangup(self) -> None:
        self.hangup_requested = True
        self.interrupted.set()

    def request_redirect(self, verbs: tuple[Verb, ...]) -> None:
        self.redirect_verbs = verbs
        self.interrupted.set()

    def take_redirect(self) -> tuple[Verb, ...] | None:
        verbs, self.redirect_verbs = self.redirect_verbs, None
        if not self.hangup_requested:
            self.interrupted.clear()
        return verbs


class CallRegistry:
    """Every call this process placed, oldest first; finished calls beyond `keep` are dropped."""

    def __init__(self, keep: int = 20_000) -> None:
        self._calls: dict[str, Call] = {}
        self.keep = keep

    def add(self, call: Call) -> None:
        self._calls[call.sid] = call
        if len(self._calls) > self.keep:
            for sid in [sid for sid, c in self._calls.items() if c.status.is_final][:1000]:
                del self._calls[sid]

    def get(self, sid: str) -> Call | None:
        return self._calls.get(sid)

    def __iter__(self) -> Iterator[Call]:
        return iter(list(self._calls.values()))

    def __len__(self) -> int:
        return len(self._calls)

    @property
    def active(self) -> int:
        return sum(1 for call in self._calls.values() if not call.status.is_final)
