"""Every lead and attempt state change, each a guarded UPDATE: a transition applies only
from the state it expects, so a redelivered task or a duplicate webhook changes nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, func, insert, literal, select, update
from sqlalchemy.orm import Session

from dispatcher.webhooks import AttemptSummary, call_timings, lead_outcome_event
from dispatcher.webhooks.payload import EventName
from shared.db.driver_statement import DriverStatement
from shared.db.models import Base, CallAttempt, Lead, WebhookDelivery
from shared.enums import AttemptState, DeferralReason, LeadStatus, Outcome


def defer(
    session: Session,
    lead_id: uuid.UUID,
    *,
    until: datetime,
    reason: DeferralReason,
    from_status: LeadStatus = LeadStatus.QUEUED,
) -> bool:
    """Back to SCHEDULED until `until`; capacity waits grow the lead's backoff counter."""
    result = session.execute(
        update(Lead)
        .where(Lead.id == lead_id, Lead.status == from_status)
        .values(
            status=LeadStatus.SCHEDULED,
            next_attempt_at=until,
            last_deferral_reason=reason,
            deferrals=Lead.deferrals + (1 if reason.is_capacity_wait else 0),
            queued_at=None,
        )
        .returning(Lead.id)
    )
    return result.first() is not None


def finish(
    session: Session,
    lead_id: uuid.UUID,
    outcome: Outcome,
    *,
    from_statuses: tuple[LeadStatus, ...] = (LeadStatus.QUEUED,),
) -> bool:
    """Final outcome; queues the merchant webhook in the same transaction."""
    lead = session.scalars(
        update(Lead)
        .where(Lead.id == lead_id, Lead.status.in_(from_statuses))
        .values(
            status=LeadStatus.FINISHED,
            outcome=outcome,
            next_attempt_at=None,
            queued_at=None,
            finished_at=func.now(),
        )
        .returning(Lead)
    ).first()
    if lead is None:
        return False
    enqueue_webhook(session, lead, "lead.finished")
    return True


def enqueue_webhook(
    session: Session, lead: Lead, event: EventName, attempt: CallAttempt | None = None
) -> None:
    """Queue the merchant's webhook in the caller's transaction (an outbox row), so the
    event exists exactly when the state change it reports does."""
    delivery_id = uuid.uuid4()
    summary = None
    if attempt is not None:
        summary = AttemptSummary(
            attempt_no=attempt.attempt_no,
            outcome=attempt.outcome,
            call_sid=attempt.provider_call_sid,
            timings=call_timings(attempt.dialed_at, attempt.answered_at, attempt.ended_at),
        )
    payload = lead_outcome_event(
        event=event,
        event_id=delivery_id,
        occurred_at=datetime.now(UTC),
        lead_id=lead.id,
        phone=lead.phone,
        status=lead.status,
        outcome=lead.outcome,
        attempts=lead.attempts,
        idempotency_key=lead.idempotency_key,
        attempt=summary,
        transcript=attempt.transcript if attempt is not None else (),
    ).to_payload()
    session.add(
        WebhookDelivery(
            id=delivery_id,
            merchant_id=lead.merchant_id,
            lead_id=lead.id,
            event=event,
            payload=payload,
            status="PENDING",
            next_attempt_at=func.now(),
        )
    )


@dataclass(frozen=True)
class DialClaim:
    """What a dispatch took for one attempt, recorded on its row before anyone dials."""

    attempt_id: uuid.UUID
    number_id: uuid.UUID
    channel_token_id: str
    media_worker_id: str
    media_reservation_id: str
    stream_url: str


# Core tables, not the ORM entities: the ORM's bulk paths cost more than the statements.
_ATTEMPTS = Base.metadata.tables[CallAttempt.__tablename__]
_LEADS = Base.metadata.tables[Lead.__tablename__]
_CLAIMED = (
    update(_LEADS)
    .where(
        _LEADS.c.id == bindparam("lead_id"),
        _LEADS.c.status == LeadStatus.QUEUED,
        _LEADS.c.attempts < _LEADS.c.max_attempts,
    )
    .values(
        status=LeadStatus.DIALING,
        attempts=_LEADS.c.attempts + 1,
        deferrals=0,
        last_deferral_reason=None,
        next_attempt_at=None,
        queued_at=None,
    )
    .returning(_LEADS.c.id)
    .cte("claimed")
)
# The statement's snapshot predates its own insert, and a competing claim of the same lead
# waits on the row lock above and then finds it no longer QUEUED, so the count cannot race.
_NEXT_ATTEMPT_NO = (
    select(func.count() + 1)
    .select_from(_ATTEMPTS)
    .where(_ATTEMPTS.c.lead_id == bindparam("lead_id"))
    .scalar_subquery()
)


def _connection(target: Session | Connection) -> Connection:
    """The connection a statement runs on; a session's joins its open transaction."""
    return target.connection() if isinstance(target, Session) else target


_CLAIM_FOR_DIAL = DriverStatement(
    insert(_ATTEMPTS)
    .from_select(
        [
            "id",
            "lead_id",
            "attempt_no",
            "number_id",
            "state",
            "channel_token_id",
            "media_worker_id",
            "media_reservation_id",
            "stream_url",
            "transcript",
            "events",
        ],
        select(
            bindparam("attempt_id", type_=_ATTEMPTS.c.id.type),
            _CLAIMED.c.id,
            _NEXT_ATTEMPT_NO,
            bindparam("number_id", type_=_ATTEMPTS.c.number_id.type),
            literal(AttemptState.CREATED, type_=_ATTEMPTS.c.state.type),
            bindparam("channel_token_id", type_=_ATTEMPTS.c.channel_token_id.type),
            bindparam("media_worker_id", type_=_ATTEMPTS.c.media_worker_id.type),
            bindparam("media_reservation_id", type_=_ATTEMPTS.c.media_reservation_id.type),
            bindparam("stream_url", type_=_ATTEMPTS.c.stream_url.type),
            literal([], type_=_ATTEMPTS.c.transcript.type),
            literal([], type_=_ATTEMPTS.c.events.type),
        ).select_from(_CLAIMED),
    )
    .returning(_ATTEMPTS.c.attempt_no)
)


def claim_for_dial(
    connection: Session | Connection, lead_id: uuid.UUID, claim: DialClaim
) -> int | None:
    """QUEUED -> DIALING and the attempt row, in one statement (atomic even outside a
    transaction); None if the lead moved on (cancelled, or another dispatch got there
    first). Returns the attempt number."""
    row = _CLAIM_FOR_DIAL.execute(
        _connection(connection),
        lead_id=lead_id,
        attempt_id=claim.attempt_id,
        number_id=claim.number_id,
        channel_token_id=claim.channel_token_id,
        media_worker_id=claim.media_worker_id,
        media_reservation_id=claim.media_reservation_id,
        stream_url=claim.stream_url,
    ).fetchone()
    return None if row is None else int(row[0])


# `set_config(..., true)` is SET LOCAL inside the statement itself, so a lone autocommitted
# UPDATE gets the asynchronous commit without a transaction's extra round trips.
_RECORD_DIALED = DriverStatement(
    update(_ATTEMPTS)
    .where(
        _ATTEMPTS.c.id == bindparam("attempt_id"),
        _ATTEMPTS.c.provider_call_sid.is_(None),
        func.set_config("synchronous_commit", "off", True).is_not(None),
    )
    .values(
        provider_call_sid=bindparam("call_sid"),
        state=AttemptState.DIALING,
        dialed_at=func.now(),
    )
)


def record_dialed(connection: Session | Connection, attempt_id: uuid.UUID, call_sid: str) -> None:
    """Committed without waiting for the WAL flush: were this write lost in a database
    crash, the attempt would keep no SID and the reconciler would adopt the call from the
    carrier (find_calls), so nothing is dialed twice. The claim before the dial stays
    fully durable."""
    _RECORD_DIALED.execute(_connection(connection), attempt_id=attempt_id, call_sid=call_sid)


def abandon_dial(session: Session, attempt_id: uuid.UUID, lead_id: uuid.UUID, error: str) -> bool:
    """The carrier refused before any call existed: end the attempt without counting it
    against the lead, and put the lead back to QUEUED for the caller to decide."""
    ended = session.execute(
        update(CallAttempt)
        .where(CallAttempt.id == attempt_id, CallAttempt.finalized_at.is_(None))
        .values(
            state=AttemptState.ENDED,
            outcome=Outcome.FAILED,
            outcome_source="dispatch",
            error=error[:2000],
            ended_at=func.now(),
            finalized_at=func.now(),
        )
        .returning(CallAttempt.id)
    ).first()
    if ended is None:
        return False
    session.execute(
        update(Lead)
        .where(Lead.id == lead_id, Lead.status == LeadStatus.DIALING)
        .values(status=LeadStatus.QUEUED, attempts=Lead.attempts - 1, queued_at=func.now())
    )
    return True
