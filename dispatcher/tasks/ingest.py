"""`callfleet.ingest_leads`: intake for trusted backends, with the API's rules and idempotency."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
from celery import shared_task
from celery.app.task import Task
from sqlalchemy.exc import OperationalError

from dispatcher.intake.errors import IntakeError
from dispatcher.intake.schemas import parse_row
from dispatcher.intake.store import ingest
from dispatcher.worker_context import WorkerContext
from shared.db.session import transaction

log = structlog.get_logger(__name__)


@shared_task(
    bind=True,
    name="callfleet.ingest_leads",
    ignore_result=False,
    # Not idempotent for rows without idempotency keys, so never acked late.
    acks_late=False,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def ingest_leads(
    self: Task[Any, Any], merchant_id: str, leads: list[dict[str, Any]]
) -> dict[str, Any]:
    """Ingest a batch for one merchant. Returns created ids, or the error body (never raises
    for bad input: a retry would not make it valid)."""
    context = WorkerContext.of(self.app)
    try:
        requests = [parse_row(fields, row) for row, fields in enumerate(leads)]
        with transaction(context.sessions) as session:
            rows = ingest(
                session, uuid.UUID(merchant_id), requests, context.limits, datetime.now(UTC)
            )
    except IntakeError as exc:
        log.info("ingest_rejected", merchant_id=merchant_id, code=exc.code, rows=len(leads))
        return exc.as_body()
    created = sum(1 for r in rows if r.created)
    log.info("ingested", merchant_id=merchant_id, created=created, rows=len(rows))
    return {
        "created": created,
        "existing": len(rows) - created,
        "leads": [{"row": r.row, "id": str(r.id), "created": r.created} for r in rows],
    }
