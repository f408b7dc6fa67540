"""Pure validation of one lead request against the merchant's templates: no I/O."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dispatcher.intake.errors import Problem
from dispatcher.intake.schemas import LeadRequest
from shared.phones import InvalidPhone, time_zones_of, to_e164
from shared.settings import Settings
from shared.templates import TemplateDefinition, check_payload


@dataclass(frozen=True)
class TemplateRef:
    """The active version of one template name, as intake needs it."""

    id: uuid.UUID
    name: str
    version: int
    definition: TemplateDefinition


@dataclass(frozen=True)
class IntakeLimits:
    default_max_attempts: int
    max_attempts_limit: int
    batch_max_leads: int

    @classmethod
    def from_settings(cls, settings: Settings) -> IntakeLimits:
        return cls(
            default_max_attempts=settings.default_max_attempts,
            max_attempts_limit=settings.max_attempts_limit,
            batch_max_leads=settings.batch_max_leads,
        )


@dataclass(frozen=True)
class NewLead:
    """A validated lead, normalised and ready to insert."""

    id: uuid.UUID
    template_id: uuid.UUID
    phone: str
    payload: dict[str, Any]
    idempotency_key: str | None
    request_hash: str
    max_attempts: int
    not_before: datetime | None
    deadline: datetime | None
    timezone: str | None
    next_attempt_at: datetime
    # The number's zones, looked up here once instead of at every dispatch (None when the
    # lead names its own timezone: the calling window never needs them then).
    phone_zones: list[str] | None = None


def request_hash(req: LeadRequest, phone_e164: str) -> str:
    """Fingerprint of what was asked, so a reused idempotency key can be compared."""
    canonical = {
        "phone": phone_e164,
        "template": req.template,
        "payload": req.payload,
        "not_before": req.not_before.isoformat() if req.not_before else None,
        "deadline": req.deadline.isoformat() if req.deadline else None,
        "timezone": req.timezone,
        "max_attempts": req.max_attempts,
    }
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def _check_phone(req: LeadRequest, problems: list[Problem]) -> str | None:
    try:
        return to_e164(req.phone)
    except InvalidPhone as exc:
        problems.append(Problem("phone", "invalid_phone", f"{exc}; use E.164, e.g. +14155550123"))
        return None


def _check_times(req: LeadRequest, now: datetime, problems: list[Problem]) -> None:
    for name in ("not_before", "deadline"):
        value: datetime | None = getattr(req, name)
        if value is not None and value.utcoffset() is None:
            problems.append(Problem(name, "naive_datetime", "must include a UTC offset"))
    if problems:
        return
    if req.deadline is not None and req.deadline <= now:
        problems.append(Problem("deadline", "deadline_passed", "deadline is already in the past"))
    if req.deadline and req.not_before and req.deadline <= req.not_before:
        problems.append(Problem("deadline", "deadline_before_start", "must be after not_before"))


def _check_timezone(req: LeadRequest, problems: list[Problem]) -> None:
    if req.timezone is None:
        return
    try:
        ZoneInfo(req.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(
            Problem("timezone", "unknown_timezone", f"'{req.timezone}' is not an IANA time zone")
        )


def _max_attempts(
    req: LeadRequest, template: TemplateRef | None, limits: IntakeLimits, problems: list[Problem]
) -> int:
    if req.max_attempts is None:
        if template is not None:
            return template.definition.retry_policy.max_attempts
        return limits.default_max_attempts
    if not 1 <= req.max_attempts <= limits.max_attempts_limit:
        problems.append(
            Problem(
                "max_attempts",
                "out_of_range",
                f"must be between 1 and {limits.max_attempts_limit}",
            )
        )
    return req.max_attempts


def validate_lead(
    req: LeadRequest,
    templates: Mapping[str, TemplateRef],
    limits: IntakeLimits,
    now: datetime,
    idempotency_key: str | None = None,
) -> NewLead | list[Problem]:
    """Return the normalised lead, or every problem found (never just the first)."""
    problems: list[Problem] = []
    phone = _check_phone(req, problems)
    template = templates.get(req.template)
    if template is None:
        problems.append(
            Problem("template", "unknown_template", f"no active template named '{req.template}'")
        )
    else:
        for issue in check_payload(template.definition, req.payload):
            problems.append(Problem(issue.field, "invalid_payload", issue.message))
    _check_times(req, now, problems)
    _check_timezone(req, problems)
    max_attempts = _max_attempts(req, template, limits, problems)
    if problems or phone is None or template is None:
        return problems
    return NewLead(
        id=uuid.uuid4(),
        template_id=template.id,
        phone=phone,
        payload=dict(req.payload),
        idempotency_key=idempotency_key or req.idempotency_key,
        request_hash=request_hash(req, phone),
        max_attempts=max_attempts,
        not_before=req.not_before,
        deadline=req.deadline,
        timezone=req.timezone,
        next_attempt_at=max(now, req.not_before) if req.not_before else now,
        phone_zones=None if req.timezone else time_zones_of(phone),
    )
