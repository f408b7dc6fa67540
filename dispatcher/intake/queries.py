"""Reads and cancellation of a merchant's leads; a merchant only ever sees its own."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session, selectinload

from dispatcher.intake.errors import LeadNotFound, NotCancellable, Problem, ValidationFailed
from dispatcher.intake.schemas import AttemptView, LeadPage, LeadView
from shared.db.models import Lead
from shared.enums import LeadStatus, Outcome

CANCELLABLE = (LeadStatus.SCHEDULED, LeadStatus.QUEUED)


def lead_view(lead: Lead) -> LeadView:
    return LeadView(
        id=lead.id,
        template=lead.template.name,
        template_version=lead.template.version,
        direction=lead.direction,
        phone=lead.phone,
        payload=lead.payload,
        idempotency_key=lead.idempotency_key,
        status=lead.status,
        outcome=lead.outcome,
        attempts=lead.attempts,
        max_attempts=lead.max_attempts,
        next_attempt_at=lead.next_attempt_at,
        not_before=lead.not_before,
        deadline=lead.deadline,
        timezone=lead.timezone,
        last_deferral_reason=lead.last_deferral_reason,
        created_at=lead.created_at,
        updated_at=lead.updated_at,
        finished_at=lead.finished_at,
        call_attempts=[
            AttemptView(
                attempt_no=a.attempt_no,
                state=a.state,
                outcome=a.outcome,
                call_sid=a.provider_call_sid,
                dialed_at=a.dialed_at,
                answered_at=a.answered_at,
                ended_at=a.ended_at,
            )
            for a in lead.call_attempts
        ],
    )


def get_lead(session: Session, merchant_id: uuid.UUID, lead_id: uuid.UUID) -> Lead:
    lead = session.scalars(
        select(Lead)
        .where(Lead.id == lead_id, Lead.merchant_id == merchant_id)
        .options(selectinload(Lead.template), selectinload(Lead.call_attempts))
    ).one_or_none()
    if lead is None:
        raise LeadNotFound(f"no lead {lead_id}")
    return lead


def encode_cursor(created_at: datetime, lead_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{lead_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, lead_id = raw.partition("|")
        return datetime.fromisoformat(created), uuid.UUID(lead_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            "invalid cursor", [Problem("cursor", "invalid_cursor", "use next_cursor as given")]
        ) from exc


def list_leads(
    session: Session,
    merchant_id: uuid.UUID,
    *,
    status: LeadStatus | None,
    cursor: str | None,
    limit: int,
) -> LeadPage:
    query = select(Lead).where(Lead.merchant_id == merchant_id)
    if status is not None:
        query = query.where(Lead.status == status)
    if cursor:
        query = query.where(tuple_(Lead.created_at, Lead.id) > decode_cursor(cursor))
    leads = session.scalars(
        query.order_by(Lead.created_at, Lead.id)
        .limit(limit + 1)
        .options(selectinload(Lead.template), selectinload(Lead.call_attempts))
    ).all()
    page, more = leads[:limit], len(leads) > limit
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more else None
    return LeadPage(leads=[lead_view(lead) for lead in page], next_cursor=next_cursor)


def cancel_lead(session: Session, merchant_id: uuid.UUID, lead_id: uuid.UUID) -> Lead:
    """Cancel a lead not yet on a call. Cancelling twice is harmless; a QUEUED lead's
    dispatch task finds it no longer QUEUED and does nothing."""
    session.execute(
        update(Lead)
        .where(Lead.id == lead_id, Lead.merchant_id == merchant_id, Lead.status.in_(CANCELLABLE))
        .values(
            status=LeadStatus.CANCELLED,
            outcome=Outcome.CANCELLED,
            next_attempt_at=None,
            finished_at=func.now(),
        )
    )
    lead = get_lead(session, merchant_id, lead_id)
    if lead.status != LeadStatus.CANCELLED:
        raise NotCancellable(
            f"lead is {lead.status}; only scheduled or queued leads can be cancelled"
        )
    return lead
