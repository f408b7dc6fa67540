"""`callfleet.call_status`: one carrier status event, applied then acted on (idempotent)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from celery import shared_task
from celery.app.task import Task

from dispatcher.call_events import (
    CallStatus,
    apply_call_status,
    send_follow_ups,
    voicemail_hangs_up,
)
from dispatcher.worker_context import WorkerContext
from shared.db.session import transaction

log = structlog.get_logger(__name__)


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
        with transaction(context.sessions) as session:
            step = apply_call_status(
                session,
                attempt,
                status,
                datetime.now(UTC),
                voicemail_hangs_up=voicemail_hangs_up(session, attempt),
            )
        send_follow_ups(
            self.app,
            attempt,
            status.call_sid,
            step,
            grace_s=context.settings.conversation_report_grace_s,
        )
        log.info("call_status", status=status.status, answered_by=status.answered_by)
        return status.status
    finally:
        structlog.contextvars.unbind_contextvars("attempt_id", "call_sid")


@shared_task(bind=True, name="callfleet.hang_up", ignore_result=True)
def hang_up(self: Task[Any, Any], call_sid: str) -> None:
    """Ending an ended call is harmless, so a repeat does no damage."""
    WorkerContext.of(self.app).provider.hang_up(call_sid)
