"""Finds what crashes and lost messages left behind and puts it right, asking the carrier
before anything could be dialed twice.

- QUEUED leads whose dispatch task was lost go back to SCHEDULED.
- Attempts created but never confirmed dialed (a dispatcher died between the attempt row
  and the call SID, or the dial request timed out): the carrier is asked for calls to that
  number since the attempt; a found call is adopted, otherwise the attempt is abandoned and
  the lead rescheduled. Only then may the lead be dialed again.
- Live attempts past the longest possible call are finalized as FAILED, and attempts the
  carrier reported ended but nobody finalized are closed as the carrier saw them.
- Expired channel leases and media reservations are reclaimed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.call_events import outcome_from_events
from dispatcher.finalization import CARRIER_OUTCOMES, Finalized, finalize_attempt
from dispatcher.lead_state import abandon_dial, defer, record_dialed
from dispatcher.providers import CallProvider, ProviderError
from shared.coordination import ChannelLeases, MediaSlots
from shared.db.models import CallAttempt, Lead, PhoneNumber
from shared.db.session import transaction
from shared.enums import AttemptState, DeferralReason, Outcome

log = structlog.get_logger(__name__)

# Carrier clocks and ours differ a little; look a bit before the attempt row was written.
CLOCK_SKEW = timedelta(seconds=60)
LIVE_STATES = (AttemptState.DIALING, AttemptState.RINGING, AttemptState.IN_PROGRESS)


@dataclass
class ReconcileReport:
    requeued: int = 0
    adopted: int = 0
    abandoned: int = 0
    expired_calls: int = 0
    closed_ended: int = 0
    reclaimed_leases: int = 0
    finalized: list[Finalized] = field(default_factory=list)


@dataclass(frozen=True)
class Unconfirmed:
    attempt_id: uuid.UUID
    lead_id: uuid.UUID
    phone: str
    created_at: datetime
    number_id: uuid.UUID | None
    channel_token_id: str | None
    media_worker_id: str | None
    media_reservation_id: str | None


def unconfirmed_attempts(session: Session, *, older_than: datetime) -> list[Unconfirmed]:
    rows = session.execute(
        select(CallAttempt, Lead.phone)
        .join(Lead, Lead.id == CallAttempt.lead_id)
        .where(
            CallAttempt.state == AttemptState.CREATED,
            CallAttempt.provider_call_sid.is_(None),
            CallAttempt.finalized_at.is_(None),
            CallAttempt.created_at < older_than,
        )
    ).all()
    return [
        Unconfirmed(
            a.id,
            a.lead_id,
            phone,
            a.created_at,
            a.number_id,
            a.channel_token_id,
            a.media_worker_id,
            a.media_reservation_id,
        )  # fmt: skip
        for a, phone in rows
    ]


class Reconciler:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        provider: CallProvider,
        channels: ChannelLeases,
        slots: MediaSlots,
        dial_unconfirmed_grace_s: float,
        call_max_duration_s: float,
        queued_stale_s: float,
        ended_unfinalized_grace_s: float,
    ) -> None:
        self.sessions = sessions
        self.provider = provider
        self.channels = channels
        self.slots = slots
        self.grace = timedelta(seconds=dial_unconfirmed_grace_s)
        self.max_call = timedelta(seconds=call_max_duration_s)
        self.queued_stale_s = queued_stale_s
        self.ended_grace = timedelta(seconds=ended_unfinalized_grace_s)

    def run(self, now: datetime) -> ReconcileReport:
        from dispatcher.sweep import requeue_stale

        report = ReconcileReport()
        with transaction(self.sessions) as session:
            report.requeued = len(requeue_stale(session, older_than_s=self.queued_stale_s))
            pending = unconfirmed_attempts(session, older_than=now - self.grace)
        for attempt in pending:
            self._settle_unconfirmed(attempt, now, report)
        self._expire_stuck_calls(now, report)
        self._close_ended_unfinalized(now, report)
        report.reclaimed_leases = self._reclaim_leases()
        return report

    def _settle_unconfirmed(
        self, attempt: Unconfirmed, now: datetime, report: ReconcileReport
    ) -> None:
        try:
            calls = self.provider.find_calls(attempt.phone, attempt.created_at - CLOCK_SKEW)
        except ProviderError as exc:
            log.warning(
                "reconcile_provider_error", attempt_id=str(attempt.attempt_id), error=exc.message
            )
            return
        if calls:
            found = calls[-1]  # the oldest call since the attempt: the one it placed
            with transaction(self.sessions) as session:
                record_dialed(session, attempt.attempt_id, found.call_sid)
                if found.ended:
                    outcome = CARRIER_OUTCOMES.get(found.status, Outcome.FAILED)
                    report.finalized.append(
                        finalize_attempt(
                            session, attempt.attempt_id, outcome, source="reconciler", now=now
                        )
                    )
            report.adopted += 1
            log.info("dial_adopted", attempt_id=str(attempt.attempt_id), call_sid=found.call_sid)
            return
        with transaction(self.sessions) as session:
            if not abandon_dial(session, attempt.attempt_id, attempt.lead_id, "dial not confirmed"):
                return
            defer(session, attempt.lead_id, until=now, reason=DeferralReason.DIAL_UNCONFIRMED)
        if attempt.number_id and attempt.channel_token_id:
            self.channels.release(str(attempt.number_id), attempt.channel_token_id)
        if attempt.media_worker_id and attempt.media_reservation_id:
            self.slots.release(attempt.media_worker_id, attempt.media_reservation_id)
        report.abandoned += 1
        log.info("dial_abandoned", attempt_id=str(attempt.attempt_id))

    def _expire_stuck_calls(self, now: datetime, report: ReconcileReport) -> None:
        with transaction(self.sessions) as session:
            stuck = session.scalars(
                select(CallAttempt.id).where(
                    CallAttempt.state.in_(LIVE_STATES),
                    CallAttempt.finalized_at.is_(None),
                    CallAttempt.created_at < now - self.max_call,
                )
            ).all()
            for attempt_id in stuck:
                report.finalized.append(
                    finalize_attempt(
                        session, attempt_id, Outcome.FAILED, source="reconciler", now=now
                    )
                )
        report.expired_calls = len(stuck)

    def _close_ended_unfinalized(self, now: datetime, report: ReconcileReport) -> None:
        """The carrier reported the end, but the finalize it called for was lost (the broker
        was down when the callback arrived, or a worker died holding the task)."""
        with transaction(self.sessions) as session:
            ended = session.execute(
                select(CallAttempt.id, CallAttempt.events).where(
                    CallAttempt.ended_at.is_not(None),
                    CallAttempt.finalized_at.is_(None),
                    CallAttempt.ended_at < now - self.ended_grace,
                )
            ).all()
            for attempt_id, events in ended:
                outcome = outcome_from_events(events or [])
                report.finalized.append(
                    finalize_attempt(session, attempt_id, outcome, source="reconciler", now=now)
                )
                log.info("ended_attempt_closed", attempt_id=str(attempt_id), outcome=outcome)
        report.closed_ended = len(ended)

    def _reclaim_leases(self) -> int:
        with self.sessions() as session:
            number_ids = session.scalars(select(PhoneNumber.id)).all()
        reclaimed = sum(self.channels.reclaim_expired(str(n)) for n in number_ids)
        return reclaimed + self.slots.reclaim_expired()
