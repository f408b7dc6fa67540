"""Saving conversation templates: validate, then add a new active version.

Errors: `TemplateInvalid` (shared.templates) lists every problem of the document, its
orchestrator's agents included; `InboundNumberTaken` is the database refusing a second active
orchestrator on one inbound number.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dispatcher.template_cache import definitions
from shared.db.models import Merchant, PhoneNumber, Template
from shared.templates import TemplateDefinition, TemplateInvalid, agent_problems, parse_template

INBOUND_ORCHESTRATOR_INDEX = "uq_templates_inbound_orchestrator"


@dataclass(frozen=True)
class SavedTemplate:
    id: uuid.UUID
    name: str
    version: int


class InboundNumberTaken(Exception):
    """Another active orchestrator already answers `number` (the database's unique index
    `uq_templates_inbound_orchestrator` said so)."""

    def __init__(self, number: str, holder: str | None) -> None:
        self.number = number
        self.holder = holder
        by = f"orchestrator '{holder}'" if holder else "another orchestrator"
        super().__init__(
            f"number {number} already answers inbound calls with {by}; at most one orchestrator "
            "per inbound number (clear inbound_number on one of them)"
        )


def save_template(session: Session, merchant_id: uuid.UUID, document: object) -> SavedTemplate:
    """Validate `document` (raises TemplateInvalid listing every problem) and make it the
    active version of its name. Earlier versions stay for the leads that reference them.

    An orchestrator's agents must be active templates of the same merchant that fit it
    (`agent_problems`), and its `inbound_number` one of the merchant's numbers; a second active
    orchestrator on that number raises `InboundNumberTaken`. A template a number answers
    inbound calls with (`inbound_template`) must render without a payload.
    """
    definition = parse_template(document)
    # Serialise concurrent saves for one merchant so versions never collide.
    session.execute(select(Merchant.id).where(Merchant.id == merchant_id).with_for_update())
    problems = orchestrator_problems(session, merchant_id, definition)
    problems += inbound_template_problems(session, merchant_id, definition)
    if problems:
        raise TemplateInvalid(problems)
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
    inbound_number = (
        None if definition.orchestrator is None else definition.orchestrator.inbound_number
    )
    template = Template(
        merchant_id=merchant_id,
        name=definition.name,
        version=(latest or 0) + 1,
        # Every key, nulls included: some (calling_window) must be explicit to parse again.
        definition=definition.model_dump(mode="json"),
        active=True,
        inbound_number=inbound_number,
    )
    try:
        # A savepoint, so that the refusal below can still name the orchestrator holding it.
        with session.begin_nested():
            session.add(template)
            session.flush()
    except IntegrityError as exc:
        if inbound_number is None or INBOUND_ORCHESTRATOR_INDEX not in str(exc.orig):
            raise
        raise InboundNumberTaken(inbound_number, _holder(session, inbound_number)) from exc
    return SavedTemplate(template.id, template.name, template.version)


def orchestrator_problems(
    session: Session, merchant_id: uuid.UUID, definition: TemplateDefinition
) -> list[str]:
    """What the database says is wrong with `definition`'s orchestrator section."""
    spec = definition.orchestrator
    if spec is None:
        return []
    agents = active_definitions(session, merchant_id, (agent.template for agent in spec.agents))
    problems = agent_problems(definition, agents)
    if spec.inbound_number is not None:
        owner = session.scalar(
            select(PhoneNumber.merchant_id).where(PhoneNumber.e164 == spec.inbound_number)
        )
        if owner != merchant_id:
            problems.append(
                f"orchestrator.inbound_number: {spec.inbound_number} is not one of this "
                "merchant's numbers"
            )
        problems.extend(_inbound_payload_problems(definition, agents))
    return problems


def payload_needed(definition: TemplateDefinition) -> list[str]:
    """The variables `definition` cannot render without a lead payload (required, no default),
    sorted: a stored definition's JSONB does not keep the document's order."""
    return sorted(
        name
        for name, spec in definition.variables.items()
        if spec.required and spec.default is None
    )


def unrenderable_inbound(template: str, needed: list[str]) -> str:
    """Why `template`, which needs the variables `needed`, cannot answer an inbound call."""
    return (
        f"'{template}' needs {', '.join(needed)} with no default, which an inbound call "
        "cannot supply"
    )


def _payload_problems(definition: TemplateDefinition, why: str) -> list[str]:
    return [
        f"variables.{name}: inbound calls carry no payload; give it a default or make it "
        f"optional ({why})"
        for name in payload_needed(definition)
    ]


def inbound_template_problems(
    session: Session, merchant_id: uuid.UUID, definition: TemplateDefinition
) -> list[str]:
    """A merchant's number that answers inbound calls with a template by this name needs it to
    render without a payload, as an inbound call brings none."""
    number = session.scalar(
        select(PhoneNumber.e164)
        .where(
            PhoneNumber.merchant_id == merchant_id,
            PhoneNumber.inbound_template == definition.name,
        )
        .order_by(PhoneNumber.e164)
        .limit(1)
    )
    if number is None:
        return []
    return _payload_problems(definition, f"number {number} answers inbound calls with it")


def _inbound_payload_problems(
    definition: TemplateDefinition, agents: Mapping[str, TemplateDefinition | None]
) -> list[str]:
    """An inbound call brings no lead payload: every variable the orchestrator or one of its
    agents needs must have a default, or the call could not be rendered."""
    problems = _payload_problems(definition, "orchestrator.inbound_number is set")
    for index, agent in enumerate(
        definition.orchestrator.agents if definition.orchestrator else ()
    ):
        target = agents.get(agent.template)
        needed = payload_needed(target) if target else []
        if needed:
            problems.append(
                f"orchestrator.agents[{index}].template: "
                + unrenderable_inbound(agent.template, needed)
            )
    return problems


def active_definitions(
    session: Session, merchant_id: uuid.UUID, names: Iterable[str]
) -> dict[str, TemplateDefinition]:
    """The merchant's active templates among `names`, parsed, by name (absent ones left out)."""
    wanted = set(names)
    if not wanted:
        return {}
    rows = session.execute(
        select(Template.name, Template.id).where(
            Template.merchant_id == merchant_id,
            Template.name.in_(wanted),
            Template.active.is_(True),
        )
    ).all()
    parsed = definitions(session, [template_id for _, template_id in rows])
    return {name: parsed[template_id] for name, template_id in rows}


def _holder(session: Session, number: str) -> str | None:
    return session.scalar(
        select(Template.name).where(Template.inbound_number == number, Template.active.is_(True))
    )
