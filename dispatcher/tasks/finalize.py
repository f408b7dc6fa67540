"""`callfleet.finalize_attempt`: the one way an attempt ends (idempotent, hence acks_late)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from celery import shared_task
from celery.app.task import Task

from dispatcher.call_metrics import count_call_record
from dispatcher.finalization import Finalized, finalize_attempt
from dispatcher.worker_context import WorkerContext
from shared.coordination import ChannelLeases, MediaSlots
from shared.db.session import transaction
from shared.enums import Outcome

log = structlog.get_logger(__name__)


def release_held(channels: ChannelLeases, slots: MediaSlots, result: Finalized) -> None:
    """Give back what a finalized attempt held; releases are idempotent by id."""
    held = result.held
    if held is None:
        return
    if held.number_id and held.channel_token_id:
        channels.release(held.number_id, held.channel_token_id)
    if held.media_worker_id and held.media_reservation_id:
        slots.release(held.media_worker_id, held.media_reservation_id)


@shared_task(bind=True, name="callfleet.finalize_attempt", ignore_result=True, acks_late=True)
def finalize(
    self: Task[Any, Any],
    attempt_id: str,
    outcome: str,
    source: str,
    record: dict[str, Any] | None = None,
) -> bool:
    context = WorkerContext.of(self.app)
    structlog.contextvars.bind_contextvars(attempt_id=attempt_id)
    try:
        with transaction(context.sessions) as session:
            result = finalize_attempt(
                session,
                uuid.UUID(attempt_id),
                Outcome(outcome),
                source=source,
                now=datetime.now(UTC),
                transcript=(record or {}).get("transcript"),
                events=(record or {}).get("events"),
            )
        if not result.applied:
            log.info("finalize_duplicate", outcome=outcome, source=source)
            return False
        release_held(context.channels, context.slots, result)
        count_call_record(context.counters, (record or {}).get("events") or ())
        context.counters.maybe_flush()
        self.app.send_task("callfleet.deliver_webhooks", ignore_result=True)
        log.info("finalized", outcome=outcome, source=source, lead_status=result.lead_status)
        return True
    finally:
        structlog.contextvars.unbind_contextvars("attempt_id")
