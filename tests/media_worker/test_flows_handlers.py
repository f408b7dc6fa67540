"""Built-in handlers: transitions, end_call, transfer, no-effect functions, end_conversation."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

from media_worker.flows import ConversationEnd, FlowPlan, build_flow
from media_worker.record import CallRecord, EndCause
from shared.enums import Outcome
from shared.templates import load_example, parse_template
from tests.media_worker.payloads import APPOINTMENT_PAYLOAD, COD_PAYLOAD


class Call:
    """A plan with its record and the ends the session was told about."""

    def __init__(self, document: dict[str, Any], payload: dict[str, object]) -> None:
        definition = parse_template(document)
        self.record = CallRecord(definition.name)
        self.ends: list[ConversationEnd] = []
        self.plan: FlowPlan = build_flow(
            definition, payload, record=self.record, on_end=self._on_end
        )

    async def _on_end(self, end: ConversationEnd) -> None:
        self.ends.append(end)

    async def call(self, node: str, function: str, args: dict[str, Any] | None = None) -> Any:
        """Call `function` as offered at `node`, as the FlowManager would while at `node`."""
        offered = {f.name: f for f in self.plan.node(node)["functions"]}
        return await offered[function].handler(dict(args or {}), SimpleNamespace(current_node=node))


def cod_call(document: dict[str, Any] | None = None) -> Call:
    return Call(document or load_example("cod_confirmation"), COD_PAYLOAD)


async def test_a_transition_returns_the_target_node_and_records_the_move() -> None:
    call = cod_call()

    result, next_node = await call.call("verify_identity", "identity_confirmed")

    assert result is None  # transition only: pipecat acknowledges it to the LLM
    expected = call.plan.node("confirm_order")
    assert next_node["name"] == "confirm_order"
    assert next_node["task_messages"] == expected["task_messages"]
    assert [f.name for f in next_node["functions"]] == [f.name for f in expected["functions"]]
    [move] = call.record.traversals
    assert (move.from_node, move.to_node, move.function, move.arguments) == (
        "verify_identity",
        "confirm_order",
        "identity_confirmed",
        {},
    )
    assert call.record.outcome is None and call.ends == []


async def test_a_transition_records_the_llms_arguments() -> None:
    call = Call(load_example("appointment_reminder"), APPOINTMENT_PAYLOAD)
    args = {"preferred_date": "2026-03-10", "part_of_day": "morning"}

    _, next_node = await call.call("collect_new_slot", "record_preferred_slot", args)

    assert next_node["name"] == "goodbye_rescheduled"
    assert call.record.traversals[0].arguments == args
    assert call.record.traversals[0].to_node == "goodbye_rescheduled"


async def test_end_call_records_the_outcome_and_ends_with_the_goodbye() -> None:
    call = cod_call()

    result, ending = await call.call("confirm_order", "cancel_order", {"reason": "changed_mind"})

    assert result is None
    assert call.record.outcome is Outcome.CANCELLED_BY_CUSTOMER
    assert call.record.decided_by is EndCause.CONVERSATION
    assert call.ends == [ConversationEnd(Outcome.CANCELLED_BY_CUSTOMER)]
    assert ending == {
        "name": "cancel_order:end",
        "task_messages": [],
        "functions": [],
        "pre_actions": [
            {
                "type": "end_conversation",
                "text": "Okay, I have cancelled order A-1001. Thank you for letting us know.",
                "append_text_to_context": True,
            }
        ],
        "respond_immediately": False,
    }
    [move] = call.record.traversals
    assert (move.from_node, move.to_node, move.arguments) == (
        "confirm_order",
        None,
        {"reason": "changed_mind"},
    )


async def test_end_call_goodbye_is_not_escaped_since_nothing_renders_it_again() -> None:
    call = Call(load_example("cod_confirmation"), {**COD_PAYLOAD, "customer_name": "{{ a }}"})

    _, ending = await call.call("reschedule", "set_delivery_date", {"new_date": "2026-03-16"})

    assert ending["pre_actions"][0]["text"] == (
        "Done. We will deliver on the new date. Thank you, {{ a }}."
    )


async def test_a_global_end_call_works_from_any_node_and_the_first_decision_stands() -> None:
    call = cod_call()

    await call.call("confirm_order", "confirm_order")
    _, ending = await call.call("confirm_order", "request_callback", {"preferred_time": "6 pm"})

    assert call.record.outcome is Outcome.CONFIRMED
    assert call.ends == [ConversationEnd(Outcome.CONFIRMED)]
    assert ending["pre_actions"][0]["text"] == "No problem, we will call you back. Thank you."
    assert call.record.traversals[1].arguments == {"preferred_time": "6 pm"}
    assert call.record.events[-1].kind == "outcome_ignored"


async def test_transfer_records_transferred_and_the_masked_target() -> None:
    call = cod_call()

    _, ending = await call.call("reschedule", "talk_to_support")

    assert call.record.outcome is Outcome.TRANSFERRED
    assert call.record.transfer_to == "+918047181234"
    assert call.ends == [ConversationEnd(Outcome.TRANSFERRED, transfer_to="+918047181234")]
    events = call.record.to_events_json()
    assert {"to": "+918•••••••34"} in [e["details"] for e in events]
    assert "8047181234" not in repr(events)
    assert ending["pre_actions"] == [
        {
            "type": "end_conversation",
            "text": "Let me connect you to our support team. Please stay on the line.",
            "append_text_to_context": True,
        }
    ]
    assert ending["functions"] == []


async def test_transfer_without_an_announcement_says_a_default_handoff_line() -> None:
    document = copy.deepcopy(load_example("cod_confirmation"))
    del document["global_functions"][1]["effect"]["announcement"]
    call = cod_call(document)

    _, ending = await call.call("verify_identity", "talk_to_support")

    assert ending["pre_actions"][0]["text"] == "Please stay on the line while I connect you."
    assert call.record.outcome is Outcome.TRANSFERRED


async def test_a_function_without_effect_records_its_arguments_and_stays() -> None:
    document = copy.deepcopy(load_example("cod_confirmation"))
    document["global_functions"].append(
        {
            "name": "note_landmark",
            "description": "The customer mentions a landmark near the delivery address.",
            "properties": {"landmark": {"type": "string"}},
            "required": ["landmark"],
        }
    )
    call = cod_call(document)

    result = await call.call("confirm_order", "note_landmark", {"landmark": "blue gate"})

    assert result == ({"status": "recorded"}, None)
    [move] = call.record.traversals
    assert (move.from_node, move.to_node, move.function, move.arguments) == (
        "confirm_order",
        "confirm_order",
        "note_landmark",
        {"landmark": "blue gate"},
    )
    assert call.record.outcome is None


async def test_an_end_conversation_action_records_its_outcome_when_it_runs() -> None:
    call = Call(load_example("appointment_reminder"), APPOINTMENT_PAYLOAD)
    record_outcome, end = call.plan.node("goodbye_rescheduled")["post_actions"]

    assert call.record.outcome is None  # entering the node decides nothing yet
    await record_outcome["handler"](record_outcome, SimpleNamespace(current_node="x"))

    assert call.record.outcome is Outcome.RESCHEDULED
    assert call.ends == [ConversationEnd(Outcome.RESCHEDULED)]
    assert end == {"type": "end_conversation"}
