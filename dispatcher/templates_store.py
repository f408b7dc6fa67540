"""Saving conversation templates: validate, then add a new active version."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shared.db.models import Merchant, Template
from shared.templates import parse_template


@dataclass(frozen=True)
class SavedTemplate:
    id: uuid.UUID
    name: str
    version: int


def save_template(session: Session, merchant_id: uuid.UUID, document: object) -> SavedTemplate:
    """Validate `document` (raises TemplateInvalid listing every problem) and make it the
    active version of its name. Earlier versions stay for the leads that reference them."""
    definition = parse_template(document)
    # Serialise concurrent saves for one merchant so versions never collide.
    session.execute(select(Merchant.id).where(Merchant.id == merchant_id).with_for_update())
    latest = session.scalar(
        select(func.max(Template.version)).where(
            Template.merchant_id == merchant_id, Template.name == definition.name
        )
    )
    session.execute(
        update(Template)
        .where(Template.merchant_id == merchant_id, Template.name == definition.name)
        .values(active=False)
    )
    template = Template(
        merchant_id=merchant_id,
        name=definition.name,
        version=(latest or 0) + 1,
        # Every key, nulls included: some (calling_window) must be explicit to parse again.
        definition=definition.model_dump(mode="json"),
        active=True,
    )
    session.add(template)
    session.flush()
    return SavedTemplate(template.id, template.name, template.version)
