"""`callfleet.call_status`: one carrier status event, applied then acted on (idempotent)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from celery import shared_task
from celery.app.task import Task
from sqlalchemy import select

from dispatcher.call_events import CallStatus, apply_call_status
from dispatcher.template_cache import definition
from dispatcher.worker_context import WorkerContext
from shared.db.models import CallAttempt, Lead
from shared.db.session import transaction

log = structlog.get_logger(__name__)


def _voicemail_hangs_up(context: WorkerContext, attempt_id: uuid.UUID) -> bool:
    with context.sessions() as session:
        template_id = session.scalar(
            select(Lead.template_id)
            .join(CallAttempt, CallAttempt.lead_id == Lead.id)
            .where(CallAttempt.id == attempt_id)
        )
        if template_id is None:
            return True
        return definition(session, template_id).voicemail.action == "hang_up"


@shared_task(bind=True, name="callfleet.call_status", ignore_result=True, acks_late=True)
def call_status(self: Task[Any, Any], attempt_id: str, event: dict[str, Any]) -> str:
    context = WorkerContext.of(self.app)
    attempt = uuid.UUID(attempt_id)
    status = CallStatus(
        call_sid=str(event["call_sid"]),
        status=str(event["status"]),
        answered_by=event.get("answered_by"),
        duration_s=event.get("duration_s"),
    )
    structlog.contextvars.bind_contextvars(attempt_id=attempt_id, call_sid=status.call_sid)
    try:
        hangs_up = _voicemail_hangs_up(context, attempt)
        with transaction(context.sessions) as session:
            step = apply_call_status(
                session, attempt, status, datetime.now(UTC), voicemail_hangs_up=hangs_up
            )
        if step.hang_up:
            context.provider.hang_up(status.call_sid)
        if step.finalize_now is not None:
            self.app.send_task(
                "callfleet.finalize_attempt", args=[attempt_id, step.finalize_now, "carrier"]
            )
        elif step.finalize_later is not None:
            self.app.send_task(
                "callfleet.finalize_attempt",
                args=[attempt_id, step.finalize_later, "carrier"],
                countdown=context.settings.conversation_report_grace_s,
            )
        log.info("call_status", status=status.status, answered_by=status.answered_by)
        return status.status
    finally:
        structlog.contextvars.unbind_contextvars("attempt_id", "call_sid")


@shared_task(bind=True, name="callfleet.hang_up", ignore_result=True)
def hang_up(self: Task[Any, Any], call_sid: str) -> None:
    """Ending an ended call is harmless, so a repeat does no damage."""
    WorkerContext.of(self.app).provider.hang_up(call_sid)
