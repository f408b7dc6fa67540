"""Writes leads: batch insert with per-merchant idempotency, atomic for the whole batch."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from dispatcher.intake.errors import IdempotencyConflict, Problem, ValidationFailed
from dispatcher.intake.schemas import LeadRequest
from dispatcher.intake.validate import IntakeLimits, NewLead, TemplateRef, validate_lead
from dispatcher.template_cache import definitions
from shared.db.models import Base, Lead, Template
from shared.enums import Direction, LeadStatus


@dataclass(frozen=True)
class IngestedRow:
    row: int
    id: uuid.UUID
    created: bool
    next_attempt_at: datetime | None


def active_templates(session: Session, merchant_id: uuid.UUID) -> dict[str, TemplateRef]:
    rows = session.execute(
        select(Template.id, Template.name, Template.version).where(
            Template.merchant_id == merchant_id, Template.active.is_(True)
        )
    ).all()
    parsed = definitions(session, [tid for tid, _, _ in rows])
    return {name: TemplateRef(tid, name, version, parsed[tid]) for tid, name, version in rows}


def _validate_all(
    requests: Sequence[LeadRequest | list[Problem]],
    keys: Sequence[str | None],
    templates: dict[str, TemplateRef],
    limits: IntakeLimits,
    now: datetime,
) -> list[NewLead]:
    batch = len(requests) > 1
    problems: list[Problem] = []
    leads: list[NewLead] = []
    if len(requests) > limits.batch_max_leads:
        raise ValidationFailed(
            f"a batch holds at most {limits.batch_max_leads} leads",
            [Problem("leads", "too_many", f"{len(requests)} > {limits.batch_max_leads}")],
        )
    for row, (req, key) in enumerate(zip(requests, keys, strict=True)):
        result = req if isinstance(req, list) else validate_lead(req, templates, limits, now, key)
        if isinstance(result, list):
            problems.extend(
                Problem(p.field, p.code, p.message, row if batch else None) for p in result
            )
        else:
            leads.append(result)
    if problems:
        noun = "rows are" if batch else "lead is"
        raise ValidationFailed(f"the {noun} invalid; nothing was written", problems)
    return leads


def _dedupe_within_batch(leads: list[NewLead]) -> dict[int, int]:
    """Map each row that repeats an earlier row's key to that row; conflicting repeats fail."""
    first_row_by_key: dict[str, int] = {}
    repeats: dict[int, int] = {}
    problems: list[Problem] = []
    for row, lead in enumerate(leads):
        if lead.idempotency_key is None:
            continue
        first = first_row_by_key.setdefault(lead.idempotency_key, row)
        if first == row:
            continue
        if leads[first].request_hash != lead.request_hash:
            problems.append(
                Problem(
                    "idempotency_key", "key_reused", f"repeats row {first} with another body", row
                )
            )
        repeats[row] = first
    if problems:
        raise IdempotencyConflict("an idempotency key is reused with a different body", problems)
    return repeats


def _insert_values(merchant_id: uuid.UUID, lead: NewLead) -> dict[str, Any]:
    return {
        "id": lead.id,
        "merchant_id": merchant_id,
        "template_id": lead.template_id,
        "direction": Direction.OUTBOUND,
        "phone": lead.phone,
        "payload": lead.payload,
        "idempotency_key": lead.idempotency_key,
        "request_hash": lead.request_hash,
        "status": LeadStatus.SCHEDULED,
        "attempts": 0,
        "max_attempts": lead.max_attempts,
        "next_attempt_at": lead.next_attempt_at,
        "not_before": lead.not_before,
        "deadline": lead.deadline,
        "timezone": lead.timezone,
        "phone_zones": lead.phone_zones,
    }


def _existing_by_key(
    session: Session, merchant_id: uuid.UUID, keys: list[str]
) -> dict[str, tuple[uuid.UUID, str, datetime | None]]:
    rows = session.execute(
        select(Lead.idempotency_key, Lead.id, Lead.request_hash, Lead.next_attempt_at).where(
            Lead.merchant_id == merchant_id, Lead.idempotency_key.in_(keys)
        )
    ).all()
    return {key: (lid, digest, due) for key, lid, digest, due in rows if key is not None}


def ingest(
    session: Session,
    merchant_id: uuid.UUID,
    requests: Sequence[LeadRequest | list[Problem]],
    limits: IntakeLimits,
    now: datetime,
    keys: Sequence[str | None] | None = None,
) -> list[IngestedRow]:
    """Validate and insert; on any invalid row or key conflict raise and write nothing.

    A row may arrive already failed (a list of its schema problems) so that its problems
    are reported with every other row's.

    The caller owns the transaction, so raising here rolls everything back. Racing
    requests on one key serialise on the unique index: exactly one inserts.
    """
    keys = keys if keys is not None else [None] * len(requests)
    leads = _validate_all(requests, keys, active_templates(session, merchant_id), limits, now)
    repeats = _dedupe_within_batch(leads)
    unique = [lead for row, lead in enumerate(leads) if row not in repeats]
    # executemany form: one cached statement that SQLAlchemy batches into multi-row
    # INSERT ... RETURNING, instead of compiling a fresh 1000-row statement each time.
    table = Base.metadata.tables[Lead.__tablename__]
    inserted = set(
        session.execute(
            insert(table)
            .on_conflict_do_nothing(constraint="uq_leads_idempotency")
            .returning(table.c.id),
            [_insert_values(merchant_id, lead) for lead in unique],
        ).scalars()
    )
    skipped_keys = [lead.idempotency_key for lead in unique if lead.id not in inserted]
    existing = _existing_by_key(session, merchant_id, [k for k in skipped_keys if k])
    results: list[IngestedRow] = []
    problems: list[Problem] = []
    for row, lead in enumerate(leads):
        source = leads[repeats[row]] if row in repeats else lead
        if source.id in inserted:
            results.append(IngestedRow(row, source.id, row not in repeats, source.next_attempt_at))
            continue
        lead_id, digest, due = existing[source.idempotency_key or ""]
        if digest != lead.request_hash:
            problems.append(
                Problem("idempotency_key", "key_reused", "key already used with another body", row)
            )
        results.append(IngestedRow(row, lead_id, False, due))
    if problems:
        if len(requests) == 1:
            problems = [Problem(p.field, p.code, p.message) for p in problems]
        raise IdempotencyConflict("an idempotency key is reused with a different body", problems)
    return results
