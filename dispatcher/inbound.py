"""Answering an inbound call: find the number's template, take a channel and a media slot,
and record the call as an inbound lead with its attempt, in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.coordination import ChannelLeases, MediaSlots
from shared.db.models import CallAttempt, Lead, PhoneNumber, Template
from shared.enums import AttemptState, Direction, LeadStatus, Outcome


@dataclass(frozen=True)
class InboundRoute:
    number: PhoneNumber
    template: Template


@dataclass(frozen=True)
class AnsweredCall:
    attempt_id: uuid.UUID
    lead_id: uuid.UUID
    stream_url: str


def route_for(session: Session, called: str) -> InboundRoute | None:
    """The template that answers the called number, or None (unknown or unconfigured).

    An active orchestrator whose `inbound_number` is this number answers it (the database
    keeps that to one); otherwise the number's own `inbound_template`. The call starts in the
    template found; an orchestrator's agents are loaded by the media worker with it.
    """
    number = session.scalar(
        select(PhoneNumber).where(PhoneNumber.e164 == called, PhoneNumber.enabled.is_(True))
    )
    if number is None or number.merchant_id is None:
        return None
    template = session.scalar(
        select(Template).where(
            Template.merchant_id == number.merchant_id,
            Template.inbound_number == number.e164,
            Template.active.is_(True),
        )
    )
    if template is None and number.inbound_template is not None:
        template = session.scalar(
            select(Template).where(
                Template.merchant_id == number.merchant_id,
                Template.name == number.inbound_template,
                Template.active.is_(True),
            )
        )
    return InboundRoute(number, template) if template is not None else None


def existing_answer(session: Session, call_sid: str) -> AnsweredCall | None:
    """Twilio retries an answer webhook that timed out: answer the same call the same way."""
    attempt = session.scalar(select(CallAttempt).where(CallAttempt.provider_call_sid == call_sid))
    if attempt is None or attempt.media_worker_id is None:
        return None
    return AnsweredCall(attempt.id, attempt.lead_id, attempt.stream_url or "")


def _inbound_lead(route: InboundRoute, caller: str, status: LeadStatus) -> Lead:
    return Lead(
        merchant_id=route.template.merchant_id,
        template_id=route.template.id,
        direction=Direction.INBOUND,
        phone=caller,
        payload={},
        request_hash="inbound",
        status=status,
        attempts=1,
        max_attempts=1,
    )


def record_answered(
    session: Session,
    route: InboundRoute,
    *,
    caller: str,
    call_sid: str,
    channel_token_id: str,
    media_worker_id: str,
    media_reservation_id: str,
    stream_url: str,
) -> tuple[uuid.UUID, uuid.UUID]:
    lead = _inbound_lead(route, caller, LeadStatus.IN_CALL)
    session.add(lead)
    session.flush()
    attempt = CallAttempt(
        lead_id=lead.id,
        attempt_no=1,
        number_id=route.number.id,
        provider_call_sid=call_sid,
        state=AttemptState.IN_PROGRESS,
        channel_token_id=channel_token_id,
        media_worker_id=media_worker_id,
        media_reservation_id=media_reservation_id,
        stream_url=stream_url,
    )
    session.add(attempt)
    session.flush()
    return lead.id, attempt.id


def record_refused(session: Session, route: InboundRoute, *, caller: str, call_sid: str) -> None:
    """No capacity: the caller heard a busy message; the call is on record as BUSY."""
    lead = _inbound_lead(route, caller, LeadStatus.FINISHED)
    lead.outcome = Outcome.BUSY
    lead.last_deferral_reason = "MEDIA_BUSY"
    session.add(lead)
    session.flush()
    session.add(
        CallAttempt(
            lead_id=lead.id,
            attempt_no=1,
            number_id=route.number.id,
            provider_call_sid=call_sid,
            state=AttemptState.ENDED,
            outcome=Outcome.BUSY,
            outcome_source="dispatch",
        )
    )


def take_capacity(
    channels: ChannelLeases,
    slots: MediaSlots,
    number: PhoneNumber,
    *,
    lease_ttl_s: float,
    reservation_ttl_s: float,
) -> tuple[str, str, str, str] | None:
    """(channel token, worker id, reservation id, stream url), or None with nothing held."""
    token = channels.try_acquire(
        str(number.id), max_channels=number.max_channels, lease_ttl_s=lease_ttl_s
    )
    if token is None:
        return None
    slot = slots.reserve(reservation_ttl_s=reservation_ttl_s)
    if slot is None:
        channels.release(str(number.id), token)
        return None
    return token, slot.worker_id, slot.reservation_id, slot.stream_url
