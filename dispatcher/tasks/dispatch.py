"""Dispatch tasks: the sweep that claims due leads, and one admission run per lead."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from celery import shared_task
from celery.app.task import Task

from dispatcher.sweep import claim_due, claim_if_due
from dispatcher.worker_context import WorkerContext
from shared.coordination import periodic_lock
from shared.db.session import transaction
from shared.fleet_metrics import ADMISSION_SECONDS, DISPATCHES

log = structlog.get_logger(__name__)


def send_dispatches(task: Task[Any, Any], lead_ids: list[uuid.UUID]) -> None:
    for lead_id in lead_ids:
        # No one waits on its result (see `intake.announce.TaskSender`).
        task.app.send_task("callfleet.dispatch", args=[str(lead_id)], ignore_result=True)


@shared_task(bind=True, name="callfleet.sweep_due", ignore_result=True)
def sweep_due(self: Task[Any, Any]) -> int:
    """Beat runs this every second; the lock keeps two beats from sweeping at once, and
    SKIP LOCKED keeps even concurrent sweeps from claiming one lead twice."""
    context = WorkerContext.of(self.app)
    claimed = 0
    with periodic_lock(context.redis, "sweep_due", ttl_s=30) as acquired:
        if not acquired:
            return 0
        while True:
            with transaction(context.sessions) as session:
                ids = claim_due(session, limit=context.settings.sweep_batch_size)
            send_dispatches(self, ids)
            claimed += len(ids)
            if len(ids) < context.settings.sweep_batch_size:
                break
    if claimed:
        log.info("swept", claimed=claimed)
    return claimed


@shared_task(bind=True, name="callfleet.dispatch_ingested", ignore_result=True, acks_late=True)
def dispatch_ingested(self: Task[Any, Any], lead_ids: list[str]) -> int:
    """Leads that arrived already due are dispatched at once, not at the next sweep."""
    context = WorkerContext.of(self.app)
    with transaction(context.sessions) as session:
        ids = claim_if_due(session, [uuid.UUID(i) for i in lead_ids])
    send_dispatches(self, ids)
    return len(ids)


@shared_task(bind=True, name="callfleet.dispatch", ignore_result=True, acks_late=True)
def dispatch(self: Task[Any, Any], lead_id: str) -> str:
    """Idempotent (a lead no longer QUEUED is skipped), hence acks_late."""
    context = WorkerContext.of(self.app)
    structlog.contextvars.bind_contextvars(lead_id=lead_id)
    try:
        started = time.perf_counter()
        verdict = context.admission.admit(uuid.UUID(lead_id), datetime.now(UTC))
        counters = context.counters
        counters.observe(ADMISSION_SECONDS, time.perf_counter() - started)
        counters.inc(DISPATCHES, verdict.action, verdict.reason or "")
        counters.maybe_flush()
        log.info(
            "dispatched",
            action=verdict.action,
            reason=verdict.reason,
            attempt_id=str(verdict.attempt_id) if verdict.attempt_id else None,
            call_sid=verdict.call_sid,
        )
        return verdict.action
    except Exception:
        # The boundary: the lead stays QUEUED and the reconciler returns it to SCHEDULED.
        log.exception("dispatch_failed")
        raise
    finally:
        structlog.contextvars.unbind_contextvars("lead_id")
