"""Applies a carrier's call-status event to its attempt: states only move forward, a
duplicate or late event changes nothing, and a final status says how the attempt ends.

Answered calls are ended by the conversation (the media worker finalizes them with the
template's outcome); the carrier's `completed` only backs that up after a grace period.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.finalization import CARRIER_OUTCOMES
from dispatcher.intake.announce import TaskSender
from dispatcher.template_cache import definition
from shared.db.models import CallAttempt, Lead
from shared.enums import AttemptState, LeadStatus, Outcome

STATE_RANK = {
    AttemptState.CREATED: 0,
    AttemptState.DIALING: 1,
    AttemptState.RINGING: 2,
    AttemptState.IN_PROGRESS: 3,
    AttemptState.ENDED: 4,
}
STATUS_STATE = {
    "queued": AttemptState.DIALING,
    "initiated": AttemptState.DIALING,
    "ringing": AttemptState.RINGING,
    "in-progress": AttemptState.IN_PROGRESS,
    "answered": AttemptState.IN_PROGRESS,
}


@dataclass(frozen=True)
class CallStatus:
    call_sid: str
    status: str
    answered_by: str | None = None
    duration_s: int | None = None


@dataclass(frozen=True)
class NextStep:
    """What the caller does after commit: finalize now, finalize after a grace period
    (answered call: the conversation should report first), hang up voicemail, or nothing."""

    finalize_now: Outcome | None = None
    finalize_later: Outcome | None = None
    hang_up: bool = False


NOTHING = NextStep()


def _machine(answered_by: str | None) -> bool:
    return bool(answered_by) and str(answered_by).startswith(("machine", "fax"))


def apply_call_status(
    session: Session, attempt_id: uuid.UUID, event: CallStatus, now: datetime, *,
    voicemail_hangs_up: bool,
) -> NextStep:  # fmt: skip
    attempt = session.scalars(
        select(CallAttempt).where(CallAttempt.id == attempt_id).with_for_update()
    ).one_or_none()
    if attempt is None or attempt.finalized_at is not None:
        return NOTHING
    if attempt.provider_call_sid not in (None, event.call_sid):
        return NOTHING  # an event for another call must not touch this attempt
    attempt.provider_call_sid = event.call_sid
    seen = {e.get("status") for e in attempt.events if isinstance(e, dict)}
    if event.status in seen:
        return NOTHING
    record: dict[str, Any] = {"status": event.status, "at": now.isoformat()}
    if event.answered_by:
        record["answered_by"] = event.answered_by
    if event.duration_s is not None:
        record["duration_s"] = event.duration_s
    attempt.events = [*attempt.events, record]

    state = STATUS_STATE.get(event.status)
    if state is not None and STATE_RANK[state] > STATE_RANK[attempt.state]:
        attempt.state = state
        if state == AttemptState.IN_PROGRESS:
            attempt.answered_at = attempt.answered_at or now
            _mark_in_call(session, attempt.lead_id)
    if _machine(event.answered_by) and voicemail_hangs_up:
        return NextStep(finalize_now=Outcome.VOICEMAIL, hang_up=True)
    if event.status in CARRIER_OUTCOMES:
        attempt.ended_at = now
        return NextStep(finalize_now=CARRIER_OUTCOMES[event.status])
    if event.status == "completed":
        # Twilio's `completed` means answered and ended normally (unanswered calls end
        # no-answer, busy, failed or canceled), even when it overtakes its `in-progress`.
        attempt.ended_at = now
        if attempt.answered_at is None and event.duration_s is not None:
            attempt.answered_at = now - timedelta(seconds=event.duration_s)
        return NextStep(finalize_later=Outcome.COMPLETED)
    return NOTHING


def outcome_from_events(events: list[Any]) -> Outcome:
    """How the carrier saw an attempt end, from the status events stored on it: for the
    reconciler, when the follow-up that should have finalized it was lost."""
    statuses = [e for e in events if isinstance(e, dict)]
    if any(_machine(e.get("answered_by")) for e in statuses):
        return Outcome.VOICEMAIL
    for event in reversed(statuses):
        status = event.get("status")
        if status in CARRIER_OUTCOMES:
            return CARRIER_OUTCOMES[str(status)]
        if status == "completed":
            return Outcome.COMPLETED
    return Outcome.FAILED


def voicemail_hangs_up(session: Session, attempt_id: uuid.UUID) -> bool:
    """Whether the attempt's template hangs up on an answering machine (the default)."""
    template_id = session.scalar(
        select(Lead.template_id)
        .join(CallAttempt, CallAttempt.lead_id == Lead.id)
        .where(CallAttempt.id == attempt_id)
    )
    return template_id is None or definition(session, template_id).voicemail.action == "hang_up"


def send_follow_ups(
    tasks: TaskSender, attempt_id: uuid.UUID, call_sid: str, step: NextStep, *, grace_s: float
) -> None:
    """Hand what the event calls for to the fleet: hang up voicemail, finalize now, or
    finalize after the conversation has had `grace_s` to report its own outcome."""
    if step.hang_up:
        tasks.send_task("callfleet.hang_up", args=[call_sid], ignore_result=True)
    if step.finalize_now is not None:
        tasks.send_task(
            "callfleet.finalize_attempt",
            args=[str(attempt_id), step.finalize_now, "carrier"],
            ignore_result=True,
        )
    elif step.finalize_later is not None:
        tasks.send_task(
            "callfleet.finalize_attempt",
            args=[str(attempt_id), step.finalize_later, "carrier"],
            countdown=grace_s,
            ignore_result=True,
        )


def _mark_in_call(session: Session, lead_id: uuid.UUID) -> None:
    lead = session.get(Lead, lead_id)
    if lead is not None and lead.status == LeadStatus.DIALING:
        lead.status = LeadStatus.IN_CALL
