"""Orchestrator templates saved through the API and the CLI over real PostgreSQL: their agents
checked against the merchant's active templates, one orchestrator per inbound number enforced
by the database, inbound calls starting in the orchestrator, agents loaded with the call."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from dispatcher.cli.main import app as cli_app
from dispatcher.inbound import route_for
from dispatcher.templates_store import save_template
from media_worker.store import CallStore
from shared.db.models import CallAttempt, Lead, PhoneNumber, Template
from shared.db.session import transaction
from shared.enums import AttemptState, Direction, LeadStatus, NumberProvider
from shared.settings import Settings
from shared.templates import TemplateInvalid, load_example
from tests.integration.conftest import MerchantFixture
from tests.integration.inbound_templates import inbound_ready

NUMBER = "+918047180000"
COD = "COD order confirmation"
CLINIC = "Clinic appointment reminder"


def front_desk(**orchestrator: Any) -> dict[str, Any]:
    document = load_example("front_desk")
    section = document["orchestrator"]
    assert isinstance(section, dict)
    section.update(orchestrator)
    return inbound_ready(document) if orchestrator.get("inbound_number") else document


def second_front_desk(**orchestrator: Any) -> dict[str, Any]:
    document = front_desk(**orchestrator)
    document["name"] = "Night desk"
    return document


def load_agents(sessions: sessionmaker[Session], merchant_id: uuid.UUID) -> None:
    with transaction(sessions) as session:
        save_template(session, merchant_id, inbound_ready(load_example("cod_confirmation")))
        save_template(session, merchant_id, inbound_ready(load_example("appointment_reminder")))


def add_number(sessions: sessionmaker[Session], merchant_id: uuid.UUID | None, e164: str) -> None:
    with transaction(sessions) as session:
        session.add(
            PhoneNumber(
                e164=e164, provider=NumberProvider.TWILIO, max_channels=2, merchant_id=merchant_id
            )
        )


def problems_of(response: Any) -> dict[str, str]:
    body = response.json()["error"]
    assert body["code"] == "validation_failed"
    return {problem["field"]: problem["message"] for problem in body["problems"]}


@pytest.fixture
def shop(make_merchant: Any, sessions: sessionmaker[Session]) -> MerchantFixture:
    """A merchant with both example agents active, ready for inbound calls (every variable
    has a default), and a number of its own."""
    merchant: MerchantFixture = make_merchant("shop")
    with transaction(sessions) as session:
        save_template(session, merchant.id, inbound_ready(load_example("cod_confirmation")))
        save_template(session, merchant.id, inbound_ready(load_example("appointment_reminder")))
    add_number(sessions, merchant.id, NUMBER)
    return merchant


# --- save-time validation (API) --------------------------------------------------------------


def test_the_api_saves_an_orchestrator_whose_agents_are_active(
    api: TestClient, shop: MerchantFixture
) -> None:
    response = api.post("/v1/templates", json=front_desk(), headers=shop.auth)

    assert response.status_code == 201, response.text
    assert response.json()["name"] == "Front desk"
    assert response.json()["version"] == 1


def test_missing_inactive_and_other_merchants_agents_are_each_listed(
    api: TestClient,
    make_merchant: Any,
    sessions: sessionmaker[Session],
) -> None:
    mine: MerchantFixture = make_merchant("mine")
    theirs: MerchantFixture = make_merchant("theirs")
    with transaction(sessions) as session:
        save_template(session, theirs.id, load_example("appointment_reminder"))
        # Only an inactive version of this one is left for `mine`.
        save_template(session, mine.id, {**load_example("cod_confirmation"), "name": "Old COD"})
        session.execute(update(Template).where(Template.name == "Old COD").values(active=False))
    document = front_desk(
        agents=[
            {"name": "orders", "template": COD, "description": "Orders."},
            {"name": "clinic", "template": CLINIC, "description": "Appointments."},
            {"name": "old", "template": "Old COD", "description": "Old orders."},
            {"name": "ghost", "template": "Nobody", "description": "Nothing."},
        ]
    )

    response = api.post("/v1/templates", json=document, headers=mine.auth)

    assert response.status_code == 422
    assert problems_of(response) == {
        "orchestrator.agents[1].template": f"no active template named '{CLINIC}'",
        "orchestrator.agents[2].template": "no active template named 'Old COD'",
        "orchestrator.agents[3].template": "no active template named 'Nobody'",
    }
    with sessions() as session:
        assert session.scalar(select(Template.id).where(Template.name == "Front desk")) is None


def test_duplicate_names_and_max_routes_bounds_are_listed_with_their_paths(
    api: TestClient, shop: MerchantFixture
) -> None:
    agent = {"name": "orders", "template": COD, "description": "Orders."}
    duplicated = front_desk(agents=[agent, {**agent, "template": CLINIC}], max_routes=0)
    response = api.post("/v1/templates", json=duplicated, headers=shop.auth)
    assert response.status_code == 422
    problems = problems_of(response)
    assert problems["orchestrator.agents[1].name"] == "duplicate agent 'orders' (also agents[0])"
    assert problems["orchestrator.max_routes"].startswith("Input should be greater than or equal")

    too_many = api.post("/v1/templates", json=front_desk(max_routes=11), headers=shop.auth)
    assert problems_of(too_many)["orchestrator.max_routes"].startswith(
        "Input should be less than or equal to 10"
    )
    not_a_number = api.post("/v1/templates", json=front_desk(max_routes="2"), headers=shop.auth)
    assert "orchestrator.max_routes" in problems_of(not_a_number)


def test_agents_that_cannot_take_a_call_over_are_refused(
    shop: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    no_persona = load_example("appointment_reminder")
    nodes = no_persona["nodes"]
    assert isinstance(nodes, dict)
    del nodes["remind"]["role_message"]
    no_persona["variables"]["customer_name"] = {"type": "integer"}  # type: ignore[index]
    with transaction(sessions) as session:
        save_template(session, shop.id, second_front_desk())
        save_template(session, shop.id, no_persona)
    nested = front_desk(
        agents=[
            {"name": "clinic", "template": CLINIC, "description": "Appointments."},
            {"name": "desk", "template": "Night desk", "description": "Another desk."},
        ]
    )

    with pytest.raises(TemplateInvalid) as raised, transaction(sessions) as session:
        save_template(session, shop.id, nested)

    assert raised.value.problems == [
        "orchestrator.agents[0].template: the initial node 'remind' of "
        f"'{CLINIC}' has no role_message, so the orchestrator's instructions would stay in "
        "force after the hand-off",
        f"orchestrator.agents[0].template: variable 'customer_name' has type integer in "
        f"'{CLINIC}' but string here; both are rendered from the same lead payload",
        "orchestrator.agents[1].template: 'Night desk' is an orchestrator itself; agents "
        "cannot route further",
    ]


def test_an_inbound_number_must_be_the_merchants_own(
    shop: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    add_number(sessions, None, "+918047180001")  # the shared pool's
    for number in ("+918047180001", "+918047189999"):
        with pytest.raises(TemplateInvalid) as raised, transaction(sessions) as session:
            save_template(session, shop.id, front_desk(inbound_number=number))
        assert raised.value.problems == [
            f"orchestrator.inbound_number: {number} is not one of this merchant's numbers"
        ]


# --- one orchestrator per inbound number -------------------------------------------------------


def test_a_second_orchestrator_on_a_number_is_a_409(
    api: TestClient, shop: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    first = api.post("/v1/templates", json=front_desk(inbound_number=NUMBER), headers=shop.auth)
    assert first.status_code == 201
    again = api.post("/v1/templates", json=front_desk(inbound_number=NUMBER), headers=shop.auth)
    assert again.status_code == 201 and again.json()["version"] == 2  # its own new version

    second = api.post(
        "/v1/templates", json=second_front_desk(inbound_number=NUMBER), headers=shop.auth
    )

    assert second.status_code == 409
    error = second.json()["error"]
    assert error["code"] == "inbound_number_taken"
    assert error["message"].startswith(
        f"number {NUMBER} already answers inbound calls with orchestrator 'Front desk'"
    )
    with sessions() as session:
        assert session.scalar(select(Template.id).where(Template.name == "Night desk")) is None
    # Once the first lets go of the number, the second may take it.
    assert api.post("/v1/templates", json=front_desk(), headers=shop.auth).status_code == 201
    taken = api.post(
        "/v1/templates", json=second_front_desk(inbound_number=NUMBER), headers=shop.auth
    )
    assert taken.status_code == 201


def test_the_database_itself_refuses_two_active_orchestrators_on_a_number(
    shop: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as session:
        save_template(session, shop.id, front_desk(inbound_number=NUMBER))
        row = session.scalar(select(Template).where(Template.name == "Front desk"))
        assert row is not None and row.inbound_number == NUMBER
        document = dict(row.definition)

    with pytest.raises(IntegrityError, match="uq_templates_inbound_orchestrator"):
        with transaction(sessions) as session:
            session.add(
                Template(
                    merchant_id=shop.id,
                    name="Bypass",
                    version=1,
                    definition=document,
                    active=True,
                    inbound_number=NUMBER,
                )
            )


def test_the_cli_refuses_a_second_orchestrator_in_one_line(
    settings: Settings, shop: MerchantFixture, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
    first, second = tmp_path / "front.json", tmp_path / "night.json"
    first.write_text(json.dumps(front_desk(inbound_number=NUMBER)))
    second.write_text(json.dumps(second_front_desk(inbound_number=NUMBER)))
    load = ["templates", "load", "--merchant", "shop"]

    assert runner.invoke(cli_app, [*load, str(first)], env=env).exit_code == 0
    refused = runner.invoke(cli_app, [*load, str(second)], env=env)

    assert refused.exit_code == 1
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"error: number {NUMBER} already answers inbound calls with orchestrator 'Front desk'"
    )

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(front_desk(agents=[], max_routes=99)))
    invalid = runner.invoke(cli_app, [*load, str(broken)], env=env)
    assert invalid.exit_code == 1
    assert "orchestrator.agents" in invalid.output and "orchestrator.max_routes" in invalid.output


# --- inbound calls and the media worker's load ------------------------------------------------


def answer_inbound_with(sessions: sessionmaker[Session], template: str) -> None:
    """Make NUMBER answer inbound calls with `template`, as `numbers add --inbound-template`."""
    with transaction(sessions) as session:
        number = session.scalar(select(PhoneNumber).where(PhoneNumber.e164 == NUMBER))
        assert number is not None
        number.inbound_template = template


def test_an_inbound_call_starts_in_the_numbers_orchestrator(
    shop: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    answer_inbound_with(sessions, COD)
    with sessions() as session:
        route = route_for(session, NUMBER)
        assert route is not None and route.template.name == COD

    with transaction(sessions) as session:
        save_template(session, shop.id, front_desk(inbound_number=NUMBER))
    with sessions() as session:
        route = route_for(session, NUMBER)
        assert route is not None and route.template.name == "Front desk"


def test_a_numbers_inbound_template_must_render_without_a_payload(
    shop: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    answer_inbound_with(sessions, COD)
    with pytest.raises(TemplateInvalid) as refused:
        with transaction(sessions) as session:
            save_template(session, shop.id, load_example("cod_confirmation"))
    needing = {p.split(":", 1)[0] for p in refused.value.problems}
    assert needing == {
        "variables.customer_name", "variables.store_name", "variables.order_id",
        "variables.amount", "variables.items", "variables.delivery_date",
    }  # fmt: skip
    why = f"(number {NUMBER} answers inbound calls with it)"
    assert all(p.endswith(why) for p in refused.value.problems)

    with transaction(sessions) as session:
        saved = save_template(session, shop.id, inbound_ready(load_example("cod_confirmation")))
    assert saved.name == COD


async def test_the_media_worker_loads_the_agents_with_the_call(
    shop: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as session:
        saved = save_template(session, shop.id, front_desk())
        lead = Lead(
            merchant_id=shop.id,
            template_id=saved.id,
            direction=Direction.OUTBOUND,
            phone="+919812345678",
            payload={"customer_name": "Asha", "store_name": "Kurta Co"},
            request_hash="x",
            status=LeadStatus.IN_CALL,
            attempts=1,
            max_attempts=1,
        )
        session.add(lead)
        session.flush()
        attempt = CallAttempt(lead_id=lead.id, attempt_no=1, state=AttemptState.IN_PROGRESS)
        session.add(attempt)
        session.flush()
        attempt_id = attempt.id
        # An agent template changed after the orchestrator was saved: it is left out.
        changed = copy.deepcopy(load_example("appointment_reminder"))
        changed["orchestrator"] = {
            "agents": [{"name": "orders", "template": COD, "description": "Orders."}]
        }
        save_template(session, shop.id, changed)

    context = await CallStore(sessions).load(attempt_id)

    assert context is not None
    assert context.definition.name == "Front desk"
    assert list(context.agents) == ["order_confirmation"]
    assert context.agents["order_confirmation"].name == COD


def test_an_inbound_orchestrator_needs_defaults_for_every_variable(
    shop: MerchantFixture, sessions: sessionmaker[Session]
) -> None:
    """An inbound call brings no payload, so saving refuses an inbound orchestrator (or an
    agent of one) that needs a variable nobody could supply."""
    with transaction(sessions) as session:
        save_template(session, shop.id, load_example("cod_confirmation"))  # needs its payload
        save_template(session, shop.id, inbound_ready(load_example("appointment_reminder")))
    document = load_example("front_desk")
    document["orchestrator"]["inbound_number"] = NUMBER  # type: ignore[index]
    with pytest.raises(TemplateInvalid) as refused, transaction(sessions) as session:
        save_template(session, shop.id, document)
    problems = refused.value.problems
    assert any(
        p.startswith("variables.customer_name: inbound calls carry no payload") for p in problems
    )
    assert any(
        p.startswith("orchestrator.agents[0].template: 'COD order confirmation' needs")
        for p in problems
    )
    assert not any("agents[1]" in p for p in problems)  # the appointment agent has defaults
