"""Intake's exception tree; each error knows its HTTP status and machine-readable code.

IntakeError
├── ValidationFailed        422  one or more fields (or batch rows) are invalid
├── IdempotencyConflict     409  a key was reused with a different body
├── LeadNotFound            404  no such lead for this merchant
└── NotCancellable          409  the lead already finished or is on a call
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input; `row` is set for batch rows (0-based)."""

    field: str
    code: str
    message: str
    row: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class IntakeError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    def as_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.problems:
            body["problems"] = [p.as_dict() for p in self.problems]
        return {"error": body}


class ValidationFailed(IntakeError):
    status_code = 422
    code = "validation_failed"


class IdempotencyConflict(IntakeError):
    status_code = 409
    code = "idempotency_conflict"


class LeadNotFound(IntakeError):
    status_code = 404
    code = "not_found"


class NotCancellable(IntakeError):
    status_code = 409
    code = "not_cancellable"


def problem_from_pydantic(error: dict[str, Any], row: int | None = None) -> Problem:
    """Map one pydantic error to a Problem; batch locations ("leads", i, ...) give the row."""
    loc = [part for part in error.get("loc", ()) if part not in ("body", "query", "path", "header")]
    if len(loc) >= 2 and loc[0] == "leads" and isinstance(loc[1], int):
        row, loc = loc[1], loc[2:]
    field = ".".join(str(part) for part in loc) or "body"
    kind = str(error.get("type", "invalid"))
    code = {"extra_forbidden": "unknown_field", "missing": "missing_field"}.get(kind, kind)
    return Problem(field, code, str(error.get("msg", "invalid")), row)
