"""Orchestrator templates: the `orchestrator` section, and the checks that need its agents.

An orchestrator answers first and hands the call to one of its agents (other templates of the
same merchant) through the built-in `route_to_agent(agent, reason)`. The section's own shape
is checked with the template (`OrchestratorSpec`); whether each agent template exists, is
active and fits is checked where templates are saved, with `agent_problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, StrictInt, field_validator

from shared.templates.fields import E164, Identifier, StrictModel, Text, raise_if

if TYPE_CHECKING:
    from shared.templates.schema import TemplateDefinition

ROUTE_FUNCTION = "route_to_agent"
"""The built-in function an orchestrator offers; no template function may take its name."""

MAX_AGENTS = 16
MAX_ROUTES = 10

ContextCarry = Literal["summary", "full", "fresh"]
"""What an agent is given of the conversation so far: a short summary, the whole history, or
nothing (its own task messages only)."""


class AgentSpec(StrictModel):
    """One agent: `name` is what the LLM passes to `route_to_agent` (an enum value), `template`
    the merchant's template that takes the call over (its active version), `description` what
    the LLM reads to choose it (not rendered)."""

    name: Identifier
    template: Annotated[Text, Field(max_length=120)]
    description: Text


class OrchestratorSpec(StrictModel):
    """The orchestrator section of a template.

    `max_routes` bounds the hand-offs of one call (1 to `MAX_ROUTES`). `inbound_number` makes
    this orchestrator answer calls to that number (one of the merchant's); the database keeps
    it to one active orchestrator per number.
    """

    agents: list[AgentSpec] = Field(min_length=1, max_length=MAX_AGENTS)
    context: ContextCarry = "summary"
    max_routes: StrictInt = Field(default=1, ge=1, le=MAX_ROUTES)
    inbound_number: E164 | None = None

    @field_validator("agents")
    @classmethod
    def _check_agents(cls, agents: list[AgentSpec]) -> list[AgentSpec]:
        # A field validator, so that duplicates are reported with the other fields' problems.
        problems = []
        names: dict[str, int] = {}
        templates: dict[str, int] = {}
        for index, agent in enumerate(agents):
            if agent.name in names:
                first = names[agent.name]
                problems.append(
                    f"[{index}].name: duplicate agent '{agent.name}' (also agents[{first}])"
                )
            names.setdefault(agent.name, index)
            if agent.template in templates:
                problems.append(
                    f"[{index}].template: '{agent.template}' is already "
                    f"agents[{templates[agent.template]}]"
                )
            templates.setdefault(agent.template, index)
        raise_if(problems)
        return agents

    def agent(self, name: str) -> AgentSpec | None:
        return next((agent for agent in self.agents if agent.name == name), None)


def agent_problems(
    definition: TemplateDefinition, agents: Mapping[str, TemplateDefinition | None]
) -> list[str]:
    """Why `definition`'s agents cannot take its calls over, one `"<path>: <message>"` each.

    `agents` maps each agent's template name to its active definition, None when the merchant
    has no active template of that name. An agent must exist, must not be an orchestrator
    itself (one level of routing), must set a `role_message` on its initial node (or the
    orchestrator's persona would carry on after the hand-off), and must not read a variable
    this template declares with another type (both render from one lead payload).
    """
    if definition.orchestrator is None:
        return []
    problems: list[str] = []
    for index, agent in enumerate(definition.orchestrator.agents):
        path = f"orchestrator.agents[{index}].template"
        target = agents.get(agent.template)
        if target is None:
            problems.append(f"{path}: no active template named '{agent.template}'")
        else:
            problems.extend(f"{path}: {message}" for message in _agent_fit(definition, target))
    return problems


def _agent_fit(definition: TemplateDefinition, agent: TemplateDefinition) -> list[str]:
    problems = []
    if agent.orchestrator is not None:
        problems.append(f"'{agent.name}' is an orchestrator itself; agents cannot route further")
    if agent.nodes[agent.initial_node].role_message is None:
        problems.append(
            f"the initial node '{agent.initial_node}' of '{agent.name}' has no role_message, "
            "so the orchestrator's instructions would stay in force after the hand-off"
        )
    for name, spec in agent.variables.items():
        mine = definition.variables.get(name)
        if mine is not None and mine.type != spec.type:
            problems.append(
                f"variable '{name}' has type {spec.type} in '{agent.name}' but {mine.type} "
                "here; both are rendered from the same lead payload"
            )
    return problems
