"""Parsed template definitions by version id: a saved version never changes, so each
process parses it once and fetches its JSON only on a miss."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from shared.db.models import Template
from shared.templates import TemplateDefinition, parse_template

_MAX_ENTRIES = 4096
_definitions: dict[uuid.UUID, TemplateDefinition] = {}


def definitions(
    session: Session | Connection, template_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, TemplateDefinition]:
    wanted = set(template_ids)
    missing = [tid for tid in wanted if tid not in _definitions]
    if missing:
        if len(_definitions) + len(missing) > _MAX_ENTRIES:
            _definitions.clear()
        rows = session.execute(
            select(Template.id, Template.definition).where(Template.id.in_(missing))
        )
        for tid, document in rows:
            _definitions[tid] = parse_template(document)
    return {tid: _definitions[tid] for tid in wanted}


def definition(session: Session | Connection, template_id: uuid.UUID) -> TemplateDefinition:
    return definitions(session, [template_id])[template_id]
