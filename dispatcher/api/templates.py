"""`/v1/templates`: save a conversation template (validated) as the active version of its name."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel

from dispatcher.api.auth import current_merchant, get_deps
from dispatcher.api.deps import ApiDeps
from dispatcher.intake.errors import IntakeError, Problem, ValidationFailed
from dispatcher.templates_store import InboundNumberTaken, save_template
from shared.db.session import transaction
from shared.templates import TemplateInvalid

router = APIRouter(prefix="/v1/templates", tags=["templates"])

Merchant = Annotated[uuid.UUID, Depends(current_merchant)]
Deps = Annotated[ApiDeps, Depends(get_deps)]


class InboundNumberConflict(IntakeError):
    status_code = 409
    code = "inbound_number_taken"


class TemplateSaved(BaseModel):
    id: uuid.UUID
    name: str
    version: int
    active: bool = True


def template_problems(exc: TemplateInvalid) -> list[Problem]:
    """`"<path>: <message>"` lines as API problems (`field` is the JSON path)."""
    problems = []
    for line in exc.problems:
        path, _, message = line.partition(": ")
        problems.append(Problem(field=path, code="invalid_template", message=message or line))
    return problems


@router.post("", status_code=201)
def create_template(
    document: Annotated[dict[str, Any], Body()], merchant_id: Merchant, deps: Deps
) -> TemplateSaved:
    """Validate the template document and make it the active version of its name."""
    try:
        with transaction(deps.sessions) as session:
            saved = save_template(session, merchant_id, document)
    except TemplateInvalid as exc:
        raise ValidationFailed(
            f"template is invalid: {len(exc.problems)} problem(s); nothing was saved",
            template_problems(exc),
        ) from exc
    except InboundNumberTaken as exc:
        raise InboundNumberConflict(str(exc)) from exc
    return TemplateSaved(id=saved.id, name=saved.name, version=saved.version)
