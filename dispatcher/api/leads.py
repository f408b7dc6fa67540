"""`/v1/leads`: submit, batch-submit, read, list and cancel a merchant's leads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response

from dispatcher.api.auth import current_merchant, get_deps
from dispatcher.api.deps import ApiDeps
from dispatcher.intake.announce import announce_due
from dispatcher.intake.errors import Problem, ValidationFailed
from dispatcher.intake.queries import cancel_lead, get_lead, lead_view, list_leads
from dispatcher.intake.schemas import (
    IDEMPOTENCY_KEY_MAX,
    BatchRequest,
    BatchResult,
    BatchRowResult,
    LeadPage,
    LeadRequest,
    LeadView,
    parse_row,
)
from dispatcher.intake.store import ingest
from shared.db.session import transaction
from shared.enums import LeadStatus

router = APIRouter(prefix="/v1/leads", tags=["leads"])

Merchant = Annotated[uuid.UUID, Depends(current_merchant)]
Deps = Annotated[ApiDeps, Depends(get_deps)]


def _header_key(header_key: str | None, body: LeadRequest) -> str | None:
    if header_key is None:
        return body.idempotency_key
    if not 0 < len(header_key) <= IDEMPOTENCY_KEY_MAX:
        raise ValidationFailed(
            "invalid Idempotency-Key",
            [Problem("Idempotency-Key", "invalid", f"1 to {IDEMPOTENCY_KEY_MAX} characters")],
        )
    if body.idempotency_key is not None and body.idempotency_key != header_key:
        raise ValidationFailed(
            "two different idempotency keys",
            [Problem("idempotency_key", "mismatch", "differs from the Idempotency-Key header")],
        )
    return header_key


@router.post("", status_code=201, responses={200: {"description": "Replay of an earlier key"}})
def create_lead(
    body: LeadRequest,
    response: Response,
    merchant_id: Merchant,
    deps: Deps,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> LeadView:
    key = _header_key(idempotency_key, body)
    now = datetime.now(UTC)
    with transaction(deps.sessions) as session:
        [row] = ingest(session, merchant_id, [body], deps.limits, now, [key])
    announce_due(deps.tasks, [row], now)
    if not row.created:
        response.status_code = 200
    with deps.sessions() as session:
        return lead_view(get_lead(session, merchant_id, row.id))


# Rows are parsed one by one inside (so every row's errors come back together); the
# documented body is still a list of LeadRequest.
_BATCH_SCHEMA = {
    "type": "object",
    "required": ["leads"],
    "additionalProperties": False,
    "properties": {
        "leads": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1000,
            "items": {"$ref": "#/components/schemas/LeadRequest"},
        }
    },
}


@router.post(
    "/batch",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": _BATCH_SCHEMA}},
            "required": True,
        }
    },
)
def create_leads(
    body: BatchRequest, response: Response, merchant_id: Merchant, deps: Deps
) -> BatchResult:
    requests = [parse_row(fields, row) for row, fields in enumerate(body.leads)]
    now = datetime.now(UTC)
    with transaction(deps.sessions) as session:
        rows = ingest(session, merchant_id, requests, deps.limits, now)
    announce_due(deps.tasks, rows, now)
    created = sum(1 for r in rows if r.created)
    if created == 0:
        response.status_code = 200
    return BatchResult(
        created=created,
        existing=len(rows) - created,
        leads=[BatchRowResult(row=r.row, id=r.id, created=r.created) for r in rows],
    )


@router.get("/{lead_id}")
def read_lead(lead_id: uuid.UUID, merchant_id: Merchant, deps: Deps) -> LeadView:
    with deps.sessions() as session:
        return lead_view(get_lead(session, merchant_id, lead_id))


@router.get("")
def read_leads(
    merchant_id: Merchant,
    deps: Deps,
    status: LeadStatus | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> LeadPage:
    with deps.sessions() as session:
        return list_leads(session, merchant_id, status=status, cursor=cursor, limit=limit)


@router.post("/{lead_id}/cancel")
def cancel(lead_id: uuid.UUID, merchant_id: Merchant, deps: Deps) -> LeadView:
    with transaction(deps.sessions) as session:
        return lead_view(cancel_lead(session, merchant_id, lead_id))
