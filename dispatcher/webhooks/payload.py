"""The JSON merchants receive when a lead finishes or one of its attempts ends.

Decisions, stable for merchants:
- Ids are strings. `event_id` is the same on every redelivery of one event: receivers
  deduplicate on it, since delivery is at least once.
- The lead's phone number is only ever sent masked (`phone_masked`, `+919•••••••78`): the
  merchant has it already and correlates by `lead_id` or its own `idempotency_key`, and
  webhook bodies end up in receivers' logs.
- The transcript is the merchant's own conversation and is sent verbatim: masking digit runs
  would also destroy order numbers and amounts that the merchant needs.
- Timestamps are ISO 8601 with offset; durations are seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict

from shared.enums import LeadStatus, Outcome
from shared.phones import mask_phone

EventName = Literal["lead.finished", "lead.attempt_ended"]
# Idempotent: masking a masked number leaves it unchanged.
MaskedPhone = Annotated[str, AfterValidator(mask_phone)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TranscriptTurn(_Frozen):
    speaker: Literal["agent", "customer"]
    text: str
    offset_ms: int | None = None  # from the moment the call was answered
    agent: str | None = None  # the agent template speaking, when the call was routed


class CallTimings(_Frozen):
    dialed_at: AwareDatetime | None = None
    answered_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    ring_s: float | None = None  # dialed -> answered (or -> ended when never answered)
    talk_s: float | None = None  # answered -> ended


class AttemptSummary(_Frozen):
    attempt_no: int
    outcome: Outcome | None
    call_sid: str | None
    timings: CallTimings


class LeadOutcomeEvent(_Frozen):
    version: Literal[1] = 1
    event: EventName
    event_id: str
    occurred_at: AwareDatetime
    lead_id: str
    idempotency_key: str | None
    template: str | None
    phone_masked: MaskedPhone
    status: LeadStatus
    outcome: Outcome | None
    attempts: int
    attempt: AttemptSummary | None
    transcript: list[TranscriptTurn]

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON values, ready for `delivery.deliver` (and for the outbox's JSON column)."""
        return self.model_dump(mode="json")


def call_timings(
    dialed_at: datetime | None, answered_at: datetime | None, ended_at: datetime | None
) -> CallTimings:
    def seconds(start: datetime | None, end: datetime | None) -> float | None:
        return round((end - start).total_seconds(), 3) if start and end else None

    return CallTimings(
        dialed_at=dialed_at,
        answered_at=answered_at,
        ended_at=ended_at,
        ring_s=seconds(dialed_at, answered_at or ended_at),
        talk_s=seconds(answered_at, ended_at),
    )


def lead_outcome_event(
    *,
    event: EventName,
    event_id: uuid.UUID | str,
    occurred_at: datetime,
    lead_id: uuid.UUID | str,
    phone: str,
    status: LeadStatus,
    outcome: Outcome | None,
    attempts: int,
    idempotency_key: str | None = None,
    template: str | None = None,
    attempt: AttemptSummary | None = None,
    transcript: Sequence[TranscriptTurn | dict[str, Any]] = (),
) -> LeadOutcomeEvent:
    """Build the event from plain values; `phone` is masked here, whatever the caller sends."""
    return LeadOutcomeEvent(
        event=event,
        event_id=str(event_id),
        occurred_at=occurred_at,
        lead_id=str(lead_id),
        idempotency_key=idempotency_key,
        template=template,
        phone_masked=phone,
        status=status,
        outcome=outcome,
        attempts=attempts,
        attempt=attempt,
        transcript=[TranscriptTurn.model_validate(turn) for turn in transcript],
    )
