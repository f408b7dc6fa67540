"""The wire shapes of intake: what merchants send and what they get back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dispatcher.intake.errors import Problem, problem_from_pydantic
from shared.enums import Direction, LeadStatus, Outcome

IDEMPOTENCY_KEY_MAX = 255


class LeadRequest(BaseModel):
    """One lead as a merchant submits it. Unknown fields are rejected, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phone: str = Field(min_length=1, max_length=40, description="E.164, e.g. +919812345678")
    template: str = Field(min_length=1, max_length=200, description="Active template name")
    payload: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=IDEMPOTENCY_KEY_MAX)
    not_before: datetime | None = None
    deadline: datetime | None = None
    timezone: str | None = Field(default=None, max_length=64, description="IANA, e.g. Asia/Kolkata")
    max_attempts: int | None = None


class BatchRequest(BaseModel):
    """Rows stay raw here so that each is parsed on its own and every row's problems are
    reported together (schema and business rules alike)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    leads: list[dict[str, Any]] = Field(min_length=1)


def parse_row(fields: object, row: int | None) -> LeadRequest | list[Problem]:
    try:
        return LeadRequest.model_validate(fields)
    except ValidationError as exc:
        return [problem_from_pydantic(dict(e), row) for e in exc.errors()]


class AttemptView(BaseModel):
    attempt_no: int
    state: str
    outcome: Outcome | None
    call_sid: str | None
    dialed_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None


class LeadView(BaseModel):
    id: uuid.UUID
    template: str
    template_version: int
    direction: Direction
    phone: str
    payload: dict[str, Any]
    idempotency_key: str | None
    status: LeadStatus
    outcome: Outcome | None
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    not_before: datetime | None
    deadline: datetime | None
    timezone: str | None
    last_deferral_reason: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    call_attempts: list[AttemptView] = Field(default_factory=list)


class BatchRowResult(BaseModel):
    row: int
    id: uuid.UUID
    created: bool


class BatchResult(BaseModel):
    created: int
    existing: int
    leads: list[BatchRowResult]


class LeadPage(BaseModel):
    leads: list[LeadView]
    next_cursor: str | None
