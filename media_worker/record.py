"""`CallRecord`: what one live call leaves behind, built as it runs and persisted when it ends.

The record is pure bookkeeping: no I/O, no globals, no locks. It is thread-compatible (use it
from one thread or task at a time, as a call's pipeline does) and every accessor returns copies.

Outcome for the attempt (`outcome_for_attempt`), first matching row wins:

| the conversation decided outcome X (end_call, transfer, end_conversation) | X          |
| no outcome decided, the customer hung up                                 | NO_RESPONSE |
| no outcome decided, the call ran into its length cap (`max_call_s`)       | NO_RESPONSE |
| no outcome decided, the media socket dropped                             | FAILED      |
| no outcome decided, the worker drained (shut down) mid-call              | FAILED      |
| no outcome decided, an error ended the call                              | FAILED      |
| no outcome decided, the pipeline ended on its own (a bug: flows decide)  | FAILED      |
| no outcome decided, the call has not ended (finalized as far as it got)  | FAILED      |

A decided outcome is never overwritten: the first decision wins (later ones are kept as
`outcome_ignored` events), and a hang-up during the goodbye does not undo it. `decided_by` is
`conversation` when an outcome was decided, else the end cause (`error` if none was recorded);
its value is what finalization stores as the attempt's `outcome_source`.

A capped call reached someone who kept the line open for the whole cap without the
conversation deciding anything: that is the customer not answering the question, as when they
hang up undecided, not a platform failure (`FAILED` is retried by the usual policies, and a
customer just held for the whole cap should not be redialled for it). `decided_by` still says
`max_duration`, so the two stay apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from shared.enums import Outcome
from shared.phones import mask_phone

Speaker = Literal["agent", "customer"]


def utc_now() -> datetime:
    return datetime.now(UTC)


class EndCause(StrEnum):
    """What ended the call (and decided the outcome when the conversation did not)."""

    CONVERSATION = "conversation"
    CUSTOMER_HUNG_UP = "customer_hung_up"
    SOCKET_DROPPED = "socket_dropped"
    WORKER_DRAINED = "worker_drained"
    MAX_DURATION = "max_duration"
    ERROR = "error"


class CallEventKind(StrEnum):
    """The event kinds the record writes itself; other parts of the worker may add their own."""

    TTS_FAILOVER = "tts_failover"
    TRANSFER_REQUESTED = "transfer_requested"
    AGENT_SWITCHED = "agent_switched"
    ROUTE_REFUSED = "route_refused"
    OUTCOME_IGNORED = "outcome_ignored"
    NODE_TRAVERSAL = "node_traversal"
    CALL_SUMMARY = "call_summary"


@dataclass(frozen=True)
class Utterance:
    """One thing said on the call; `offset_ms` counts from the answer (None if unknown)."""

    speaker: Speaker
    text: str
    started_at: datetime
    ended_at: datetime | None
    offset_ms: int | None
    agent: str | None
    tts_provider: str | None
    tts_voice: str | None = None


@dataclass(frozen=True)
class NodeTraversal:
    """One function call the LLM made: `to_node` is the node it moved to, `from_node` when it
    stayed, and None when the call ended (end_call, transfer)."""

    from_node: str | None
    to_node: str | None
    function: str
    arguments: dict[str, Any]
    at: datetime


@dataclass(frozen=True)
class CallEvent:
    """Something worth keeping on the attempt (TTS failover, transfer, ...); `details` holds
    JSON values."""

    kind: str
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LatencySummary:
    """Per-call response latency (customer stopped speaking -> first bot audio), nearest-rank
    percentiles over the call's turns."""

    count: int
    p50_ms: int
    p95_ms: int


def percentile_ms(sorted_ms: list[int], percent: float) -> int:
    """Nearest-rank percentile of an ascending, non-empty list (always an observed value)."""
    rank = max(1, math.ceil(percent / 100 * len(sorted_ms)))
    return sorted_ms[rank - 1]


class CallRecord:
    """Transcript, node traversal, outcome, latency and events of one call.

    `template_name` labels the agent's turns until `switch_agent` routes the call to another
    agent template. `clock` stamps entries given no explicit `at` (tests pass a fixed one).
    """

    def __init__(self, template_name: str, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._clock = clock
        self._agent = template_name
        self._answered_at: datetime | None = None
        self._utterances: list[Utterance] = []
        self._traversals: list[NodeTraversal] = []
        self._events: list[CallEvent] = []
        self._latencies_ms: list[int] = []
        self._outcome: Outcome | None = None
        self._ended_by: EndCause | None = None
        self._ended_at: datetime | None = None
        self._transfer_to: str | None = None

    # --- what happened ---------------------------------------------------------------------

    def mark_answered(self, at: datetime | None = None) -> None:
        """The moment offsets count from; only the first call counts."""
        if self._answered_at is None:
            self._answered_at = self._stamp(at)

    def switch_agent(
        self, agent: str, at: datetime | None = None, *, reason: str | None = None
    ) -> CallEvent:
        """Route the call to agent template `agent`: later agent turns carry its name. The
        event keeps `reason` (why the call was handed over, as the model put it) when given."""
        details: dict[str, Any] = {"from": self._agent, "to": agent}
        if reason is not None:
            details["reason"] = reason
        event = self.add_event(CallEventKind.AGENT_SWITCHED, details, at)
        self._agent = agent
        return event

    @property
    def agent(self) -> str:
        """The agent template the call is with now (the one labelling agent turns)."""
        return self._agent

    def add_utterance(
        self,
        speaker: Speaker,
        text: str,
        *,
        started_at: datetime,
        ended_at: datetime | None = None,
        tts_provider: str | None = None,
        tts_voice: str | None = None,
    ) -> Utterance | None:
        """Append a transcript entry; blank text (an empty STT result) is not kept.

        Agent turns carry the current agent template and the TTS provider (and voice id) that
        spoke them.
        """
        if not text.strip():
            return None
        started_at = self._stamp(started_at)
        utterance = Utterance(
            speaker=speaker,
            text=text.strip(),
            started_at=started_at,
            ended_at=None if ended_at is None else self._stamp(ended_at),
            offset_ms=self._offset_ms(started_at),
            agent=self._agent if speaker == "agent" else None,
            tts_provider=tts_provider if speaker == "agent" else None,
            tts_voice=tts_voice if speaker == "agent" else None,
        )
        self._utterances.append(utterance)
        return utterance

    def add_traversal(
        self,
        *,
        function: str,
        from_node: str | None,
        to_node: str | None,
        arguments: Mapping[str, Any],
        at: datetime | None = None,
    ) -> NodeTraversal:
        """Record one function call and where it took the conversation."""
        traversal = NodeTraversal(from_node, to_node, function, dict(arguments), self._stamp(at))
        self._traversals.append(traversal)
        return traversal

    def add_turn_latency_ms(self, latency_ms: float) -> None:
        """One turn's latency: the customer stopped speaking -> the first bot audio."""
        if not math.isfinite(latency_ms) or latency_ms < 0:
            raise ValueError(f"turn latency must be a finite, non-negative ms value: {latency_ms}")
        self._latencies_ms.append(round(latency_ms))

    def add_event(
        self, kind: str, details: Mapping[str, Any] | None = None, at: datetime | None = None
    ) -> CallEvent:
        """Append an event; `details` must hold JSON values."""
        event = CallEvent(str(kind), self._stamp(at), dict(details or {}))
        self._events.append(event)
        return event

    def add_tts_failover(
        self, from_provider: str, to_provider: str, reason: str, at: datetime | None = None
    ) -> CallEvent:
        details = {"from": from_provider, "to": to_provider, "reason": reason}
        return self.add_event(CallEventKind.TTS_FAILOVER, details, at)

    def request_transfer(self, number: str, at: datetime | None = None) -> CallEvent:
        """Keep the transfer target for the session (`transfer_to`); the event holds it masked."""
        self._transfer_to = number
        return self.add_event(CallEventKind.TRANSFER_REQUESTED, {"to": mask_phone(number)}, at)

    def decide_outcome(self, outcome: Outcome, at: datetime | None = None) -> bool:
        """The conversation decided the business outcome; False (and an event) if it already had."""
        if self._outcome is not None:
            details = {"outcome": str(outcome), "kept": str(self._outcome)}
            self.add_event(CallEventKind.OUTCOME_IGNORED, details, at)
            return False
        self._outcome = outcome
        return True

    def end(self, cause: EndCause, at: datetime | None = None) -> bool:
        """The call is over; only the first cause counts (a socket closing after the goodbye
        does not turn a finished conversation into a dropped one)."""
        if self._ended_by is not None:
            return False
        self._ended_by = cause
        self._ended_at = self._stamp(at)
        return True

    # --- reading it back ---------------------------------------------------------------------

    @property
    def answered_at(self) -> datetime | None:
        return self._answered_at

    @property
    def outcome(self) -> Outcome | None:
        """The outcome the conversation decided, if it did."""
        return self._outcome

    @property
    def ended_by(self) -> EndCause | None:
        return self._ended_by

    @property
    def ended_at(self) -> datetime | None:
        return self._ended_at

    @property
    def transfer_to(self) -> str | None:
        """The E.164 number the conversation asked to transfer to (unmasked: the session
        dials it); None when no transfer was requested."""
        return self._transfer_to

    @property
    def decided_by(self) -> EndCause:
        if self._outcome is not None:
            return EndCause.CONVERSATION
        return self._ended_by or EndCause.ERROR

    @property
    def utterances(self) -> tuple[Utterance, ...]:
        return tuple(self._utterances)

    @property
    def traversals(self) -> tuple[NodeTraversal, ...]:
        return tuple(self._traversals)

    @property
    def events(self) -> tuple[CallEvent, ...]:
        return tuple(self._events)

    @property
    def turn_latencies_ms(self) -> tuple[int, ...]:
        return tuple(self._latencies_ms)

    def latency_summary(self) -> LatencySummary | None:
        """p50/p95 over the call's turns; None before the first measured turn."""
        if not self._latencies_ms:
            return None
        ordered = sorted(self._latencies_ms)
        return LatencySummary(len(ordered), percentile_ms(ordered, 50), percentile_ms(ordered, 95))

    def outcome_for_attempt(self) -> Outcome:
        """The outcome finalization records (the table in the module docstring)."""
        if self._outcome is not None:
            return self._outcome
        if self._ended_by in (EndCause.CUSTOMER_HUNG_UP, EndCause.MAX_DURATION):
            return Outcome.NO_RESPONSE
        return Outcome.FAILED

    # --- JSON for the attempt ------------------------------------------------------------------

    def to_transcript_json(self) -> list[dict[str, Any]]:
        """The merchant's transcript, in speaking order: `TranscriptTurn`-shaped dicts."""
        return [
            {"speaker": u.speaker, "text": u.text, "offset_ms": u.offset_ms, "agent": u.agent}
            for u in self._in_speaking_order()
        ]

    def to_events_json(self) -> list[dict[str, Any]]:
        """Events and node transitions in time order, then one `call_summary` event with the
        outcome, latency and per-utterance timings (in transcript order) and TTS providers."""
        stamped = [(e.at, _event_json(e)) for e in self._events]
        stamped += [(t.at, _traversal_json(t)) for t in self._traversals]
        stamped.sort(key=lambda pair: pair[0])
        return [event for _, event in stamped] + [self._summary_json()]

    def to_finalize_record(self) -> dict[str, Any]:
        """The `record` argument of `callfleet.finalize_attempt`."""
        return {"transcript": self.to_transcript_json(), "events": self.to_events_json()}

    def _summary_json(self) -> dict[str, Any]:
        summary = self.latency_summary()
        details = {
            "outcome": str(self.outcome_for_attempt()),
            "decided_by": str(self.decided_by),
            "ended_by": None if self._ended_by is None else str(self._ended_by),
            "answered_at": _iso(self._answered_at),
            "latency": None if summary is None else asdict(summary),
            "turn_latencies_ms": list(self._latencies_ms),
            "utterances": [_utterance_timing_json(u) for u in self._in_speaking_order()],
        }
        at = self._ended_at or self._clock()
        return _event_json(CallEvent(CallEventKind.CALL_SUMMARY.value, at, details))

    def _in_speaking_order(self) -> list[Utterance]:
        # Stable: turns that start together keep the order they were recorded in.
        return sorted(self._utterances, key=lambda u: u.started_at)

    def _offset_ms(self, started_at: datetime) -> int | None:
        if self._answered_at is None:
            return None
        # A turn stamped just before the answer was registered still starts the call.
        return max(0, round((started_at - self._answered_at).total_seconds() * 1000))

    def _stamp(self, at: datetime | None) -> datetime:
        stamp = self._clock() if at is None else at
        if stamp.tzinfo is None:
            raise ValueError("call record timestamps must be timezone-aware")
        return stamp


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _utterance_timing_json(u: Utterance) -> dict[str, Any]:
    return {
        "started_at": _iso(u.started_at),
        "ended_at": _iso(u.ended_at),
        "tts_provider": u.tts_provider,
        "tts_voice": u.tts_voice,
    }


def _event_json(event: CallEvent) -> dict[str, Any]:
    return {"kind": event.kind, "at": event.at.isoformat(), "details": event.details}


def _traversal_json(traversal: NodeTraversal) -> dict[str, Any]:
    details = {key: value for key, value in asdict(traversal).items() if key != "at"}
    return {
        "kind": CallEventKind.NODE_TRAVERSAL.value,
        "at": _iso(traversal.at),
        "details": details,
    }
