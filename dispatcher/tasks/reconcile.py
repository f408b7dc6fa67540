"""Periodic upkeep: the reconciler (every 30 s) and the fleet health check (every 60 s)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from celery import shared_task
from celery.app.task import Task
from sqlalchemy import func, select

from dispatcher.tasks.finalize import release_held
from dispatcher.worker_context import WorkerContext
from shared.coordination import periodic_lock
from shared.db.models import Lead
from shared.enums import LeadStatus

log = structlog.get_logger(__name__)


@shared_task(bind=True, name="callfleet.reconcile", ignore_result=True)
def reconcile(self: Task[Any, Any]) -> dict[str, int]:
    context = WorkerContext.of(self.app)
    with periodic_lock(context.redis, "reconcile", ttl_s=120) as acquired:
        if not acquired:
            return {}
        report = context.reconciler.run(datetime.now(UTC))
    for result in report.finalized:
        release_held(context.channels, context.slots, result)
    counts = {
        "requeued": report.requeued,
        "adopted": report.adopted,
        "abandoned": report.abandoned,
        "expired_calls": report.expired_calls,
        "reclaimed_leases": report.reclaimed_leases,
    }
    if any(counts.values()):
        log.info("reconciled", **counts)
    return counts


@shared_task(bind=True, name="callfleet.health_check", ignore_result=True)
def health_check(self: Task[Any, Any]) -> dict[str, Any]:
    """Logs the fleet's vital signs; alerts when leads wait and no media capacity exists."""
    context = WorkerContext.of(self.app)
    with periodic_lock(context.redis, "health_check", ttl_s=50) as acquired:
        if not acquired:
            return {}
        with context.sessions() as session:
            by_status = dict(
                session.execute(select(Lead.status, func.count()).group_by(Lead.status)).all()
            )
        free_slots = context.slots.free_slots()
    waiting = by_status.get(LeadStatus.SCHEDULED, 0) + by_status.get(LeadStatus.QUEUED, 0)
    if waiting and free_slots == 0:
        context.alerter.raise_alert(
            "no_media_capacity",
            "fleet",
            f"{waiting} leads wait and no media worker advertises a free slot",
            every_s=1800,
        )
    vitals = {"leads": {str(k): int(v) for k, v in by_status.items()}, "free_slots": free_slots}
    log.info("health", **vitals)
    return vitals
