"""The `orchestrator` section of a template: its shape, the names it reserves, and the pure
checks of its agents (`agent_problems`), without a database."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from shared.templates import (
    TemplateInvalid,
    agent_problems,
    load_example,
    parse_template,
)


def front_desk(**orchestrator: Any) -> dict[str, Any]:
    document = copy.deepcopy(load_example("front_desk"))
    document["orchestrator"].update(orchestrator)  # type: ignore[attr-defined]
    return document


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(TemplateInvalid) as raised:
        parse_template(document)
    return raised.value.problems


def test_the_front_desk_example_parses_and_round_trips() -> None:
    definition = parse_template(load_example("front_desk"))

    assert definition.orchestrator is not None
    assert [a.name for a in definition.orchestrator.agents] == [
        "order_confirmation",
        "appointment_reminder",
    ]
    assert (definition.orchestrator.context, definition.orchestrator.max_routes) == ("summary", 1)
    assert parse_template(json.loads(definition.model_dump_json())) == definition


def test_an_orchestrator_needs_no_ending_of_its_own() -> None:
    document = front_desk()
    document["nodes"]["triage"]["functions"] = []
    document["global_functions"] = []

    assert parse_template(document).orchestrator is not None
    del document["orchestrator"]
    assert problems(document) == [
        "nodes.triage: a call here can neither leave nor end: no function has an effect and "
        "there is no end_conversation action",
        "nodes: nothing ever ends the call; add a function with an end_call effect or an "
        "end_conversation action",
    ]


def test_duplicates_and_bounds_are_reported_together() -> None:
    agent = {"name": "orders", "template": "A", "description": "Orders."}
    document = front_desk(
        agents=[agent, {**agent, "description": "Again."}], max_routes=0, context="history"
    )

    assert problems(document) == [
        "orchestrator.agents[1].name: duplicate agent 'orders' (also agents[0])",
        "orchestrator.agents[1].template: 'A' is already agents[0]",
        "orchestrator.context: Input should be 'summary', 'full' or 'fresh' (got 'history')",
        "orchestrator.max_routes: Input should be greater than or equal to 1",
    ]


@pytest.mark.parametrize(
    ("max_routes", "message"),
    [
        (11, "Input should be less than or equal to 10"),
        (True, "Input should be a valid integer"),
        (2.5, "Input should be a valid integer"),
    ],
)
def test_max_routes_is_a_bounded_positive_integer(max_routes: object, message: str) -> None:
    assert problems(front_desk(max_routes=max_routes)) == [f"orchestrator.max_routes: {message}"]


def test_agents_are_required_and_named_like_identifiers() -> None:
    assert problems(front_desk(agents=[]))[0].startswith("orchestrator.agents: List should have")
    bad = front_desk(agents=[{"name": "order desk", "template": " ", "description": "x"}])
    assert [line.split(":")[0] for line in problems(bad)] == [
        "orchestrator.agents[0].name",
        "orchestrator.agents[0].template",
    ]


def test_route_to_agent_is_reserved_and_agent_descriptions_are_not_rendered() -> None:
    document = front_desk()
    document["nodes"]["triage"]["functions"][0]["name"] = "route_to_agent"
    document["orchestrator"]["agents"][0]["description"] = "Orders of {{ customer_name }}."

    assert problems(document) == [
        "nodes.triage.functions[0].name: 'route_to_agent' is the orchestrator's built-in; "
        "choose another name",
        "orchestrator.agents[0].description: descriptions are not rendered; remove the {{ }}",
    ]


def test_an_orchestrator_cannot_list_itself() -> None:
    document = front_desk(agents=[{"name": "me", "template": "Front desk", "description": "x"}])
    assert problems(document) == [
        "orchestrator.agents[0].template: an orchestrator cannot hand a call to itself"
    ]


def test_agent_problems_checks_each_agent_against_the_orchestrator() -> None:
    desk = parse_template(load_example("front_desk"))
    cod = parse_template(load_example("cod_confirmation"))
    clinic = parse_template(load_example("appointment_reminder"))

    assert agent_problems(desk, {cod.name: cod, clinic.name: clinic}) == []
    assert agent_problems(desk, {cod.name: cod}) == [
        "orchestrator.agents[1].template: no active template named 'Clinic appointment reminder'"
    ]
    assert agent_problems(cod, {}) == []  # not an orchestrator
