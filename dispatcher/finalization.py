"""Ends an attempt exactly once: applies the outcome, then retries the lead by its template's
policy or finishes it, and queues the merchant webhook, all in one transaction. What the
attempt held is released by the caller after commit (releases are idempotent by id)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.lead_state import enqueue_webhook
from dispatcher.template_cache import definition
from shared.db.models import CallAttempt, Lead
from shared.enums import AttemptState, DeferralReason, LeadStatus, Outcome
from shared.templates import RetryPolicy

# A template allowing fewer attempts than its lead asks for has no interval to give.
FALLBACK_RETRY_DELAY_S = 1800
# Twilio's final call statuses that are outcomes on their own (no conversation happened).
CARRIER_OUTCOMES = {
    "no-answer": Outcome.NO_ANSWER,
    "busy": Outcome.BUSY,
    "failed": Outcome.FAILED,
    "canceled": Outcome.FAILED,
}


@dataclass(frozen=True)
class HeldResources:
    number_id: str | None
    channel_token_id: str | None
    media_worker_id: str | None
    media_reservation_id: str | None


@dataclass(frozen=True)
class Finalized:
    """`applied` is False for a duplicate: nothing changed and nothing is to be released."""

    applied: bool
    lead_status: LeadStatus | None = None
    lead_outcome: Outcome | None = None
    held: HeldResources | None = None


DUPLICATE = Finalized(applied=False)


def _retry_delay_s(policy: RetryPolicy, attempt_no: int) -> int:
    try:
        return policy.delay_before_attempt_s(attempt_no)
    except ValueError:
        return FALLBACK_RETRY_DELAY_S


def _settle_lead(lead: Lead, policy: RetryPolicy, outcome: Outcome, now: datetime) -> bool:
    """Schedule the retry the policy allows, or finish the lead; True when finished."""
    retryable = outcome in policy.retry_on
    if retryable and lead.attempts < lead.max_attempts:
        due = now + timedelta(seconds=_retry_delay_s(policy, lead.attempts + 1))
        if lead.deadline is None or due < lead.deadline:
            lead.status = LeadStatus.SCHEDULED
            lead.next_attempt_at = due
            lead.last_deferral_reason = DeferralReason.RETRY_SCHEDULED
            return False
        outcome = Outcome.EXPIRED
    elif retryable:
        outcome = Outcome.MAX_ATTEMPTS
    lead.status = LeadStatus.FINISHED
    lead.outcome = outcome
    lead.next_attempt_at = None
    lead.finished_at = now
    return True


def finalize_attempt(
    session: Session,
    attempt_id: uuid.UUID,
    outcome: Outcome,
    *,
    source: str,
    now: datetime,
    transcript: list[Any] | None = None,
    events: list[Any] | None = None,
) -> Finalized:
    attempt = session.scalars(
        select(CallAttempt).where(CallAttempt.id == attempt_id).with_for_update()
    ).one_or_none()
    if attempt is None or attempt.finalized_at is not None:
        return DUPLICATE
    lead = session.scalars(select(Lead).where(Lead.id == attempt.lead_id).with_for_update()).one()
    attempt.state = AttemptState.ENDED
    attempt.outcome = outcome
    attempt.outcome_source = source
    attempt.ended_at = attempt.ended_at or now
    attempt.finalized_at = now
    if transcript is not None:
        attempt.transcript = transcript
    if events is not None:
        attempt.events = [*attempt.events, *events]
    if lead.status in (LeadStatus.DIALING, LeadStatus.IN_CALL):
        policy = definition(session, lead.template_id).retry_policy
        finished = _settle_lead(lead, policy, outcome, now)
        enqueue_webhook(
            session, lead, "lead.finished" if finished else "lead.attempt_ended", attempt
        )
    session.flush()
    return Finalized(
        applied=True,
        lead_status=lead.status,
        lead_outcome=lead.outcome,
        held=HeldResources(
            str(attempt.number_id) if attempt.number_id else None,
            attempt.channel_token_id,
            attempt.media_worker_id,
            attempt.media_reservation_id,
        ),
    )
