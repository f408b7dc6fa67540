"""`build_flow` node configs from the shipped examples: functions, rendered text, secrets."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from pipecat.flows import ContextStrategy, ContextStrategyConfig, FlowsFunctionSchema

from media_worker.flows import ConversationEnd, FlowPlan, build_flow, voicemail_plan
from media_worker.record import CallRecord
from shared.templates import (
    PayloadInvalid,
    TemplateDefinition,
    load_example,
    parse_template,
    render_text,
)
from tests.media_worker.payloads import APPOINTMENT_PAYLOAD as SHARED_APPOINTMENT
from tests.media_worker.payloads import COD_PAYLOAD

APPOINTMENT_PAYLOAD: dict[str, object] = {**SHARED_APPOINTMENT, "fasting_required": True}
SECRET = "UPI-SECRET-4471"


async def ignore_end(end: ConversationEnd) -> None:
    return None


def plan_for(document: dict[str, Any], payload: dict[str, object]) -> FlowPlan:
    definition = parse_template(document)
    return build_flow(definition, payload, record=CallRecord(definition.name), on_end=ignore_end)


def cod_plan(**overrides: object) -> FlowPlan:
    return plan_for(load_example("cod_confirmation"), {**COD_PAYLOAD, **overrides})


def function_names(config: Any) -> list[str]:
    return [function.name for function in config["functions"]]


def strings_in(value: object) -> Iterator[str]:
    """Every string inside a node config: messages, actions, function schemas, strategies."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)
    elif isinstance(value, FlowsFunctionSchema):
        yield from strings_in([value.name, value.description, value.properties, value.required])
    elif isinstance(value, ContextStrategyConfig):
        yield from strings_in(value.summary_prompt)


@pytest.mark.parametrize(
    ("example", "payload", "expected"),
    [
        (
            "cod_confirmation",
            COD_PAYLOAD,
            {
                "verify_identity": ["identity_confirmed", "wrong_person"],
                "confirm_order": ["confirm_order", "cancel_order", "reschedule_delivery"],
                "reschedule": ["set_delivery_date"],
            },
        ),
        (
            "appointment_reminder",
            APPOINTMENT_PAYLOAD,
            {
                "remind": ["confirm_appointment", "reschedule_appointment", "cancel_appointment"],
                "collect_new_slot": ["record_preferred_slot"],
                "goodbye_rescheduled": [],
            },
        ),
    ],
)
def test_every_node_offers_the_global_functions_and_its_own(
    example: str, payload: dict[str, object], expected: dict[str, list[str]]
) -> None:
    plan = plan_for(load_example(example), payload)
    globals_ = {
        "cod_confirmation": ["request_callback", "talk_to_support"],
        "appointment_reminder": ["connect_front_desk"],
    }[example]

    assert plan.node_names == tuple(expected)
    for name, own in expected.items():
        config = plan.node(name)
        assert config["name"] == name
        assert function_names(config) == [*globals_, *own]
    assert function_names(plan.initial_node()) == function_names(plan.node(plan.initial_node_name))


def test_function_schemas_carry_the_templates_arguments() -> None:
    functions = {f.name: f for f in cod_plan().node("confirm_order")["functions"]}

    cancel = functions["cancel_order"]
    assert cancel.description == "The customer does not want the order any more."
    assert cancel.required == ["reason"]
    assert cancel.properties["reason"]["type"] == "string"
    assert cancel.properties["reason"]["description"] == "Why the customer cancels."
    assert cancel.properties["reason"]["enum"][0] == "changed_mind"
    assert functions["confirm_order"].properties == {}
    assert functions["request_callback"].properties == {
        "preferred_time": {
            "type": "string",
            "description": "When to call back, in the customer's words.",
        }
    }


def test_prompts_and_greeting_are_rendered_with_the_payload() -> None:
    plan = cod_plan()
    initial = plan.initial_node()
    confirm = plan.node("confirm_order")

    assert initial["pre_actions"][0] == {
        "type": "tts_say",
        "text": "Hello, this is Riya calling from Kurta Co. Am I speaking with Asha Verma?",
        "append_text_to_context": True,
    }
    assert initial["respond_immediately"] is False
    assert initial["role_message"].startswith(
        "You are Riya, a polite and brief voice assistant for Kurta Co,"
    )
    assert "speaking with Asha Verma." in initial["task_messages"][0]["content"]
    assert initial["task_messages"][0]["role"] == "developer"
    content = confirm["task_messages"][0]["content"]
    assert "order A-1001 for 2 cotton kurtas will be delivered on 2026-03-14" in content
    assert "899 rupees is to be paid" in content  # the optional currency took its default
    assert "role_message" not in confirm  # the system instruction persists from the last node
    assert confirm["respond_immediately"] is True


def test_the_greeting_is_spoken_on_the_first_entry_only() -> None:
    plan = plan_for(load_example("cod_confirmation"), COD_PAYLOAD)
    reschedule_first = copy.deepcopy(load_example("cod_confirmation"))
    reschedule_first["initial_node"] = "reschedule"
    starts_in_reschedule = plan_for(reschedule_first, COD_PAYLOAD)

    assert plan.node("verify_identity")["pre_actions"] == []
    assert [a["type"] for a in starts_in_reschedule.initial_node()["pre_actions"]] == [
        "tts_say",
        "tts_say",
    ]
    assert starts_in_reschedule.initial_node()["pre_actions"][1]["text"] == (
        "Sure, let us find a better day."
    )


def test_template_actions_and_context_strategy_map_to_pipecat() -> None:
    plan = plan_for(load_example("appointment_reminder"), APPOINTMENT_PAYLOAD)
    goodbye = plan.node("goodbye_rescheduled")

    assert [action["type"] for action in goodbye["post_actions"]] == [
        "function",
        "end_conversation",
    ]
    assert goodbye["post_actions"][1] == {"type": "end_conversation"}
    assert goodbye["context_strategy"] == ContextStrategyConfig(strategy=ContextStrategy.APPEND)
    assert "context_strategy" not in plan.node("remind")  # the FlowManager's default applies
    assert "quote booking reference BK-77" in goodbye["task_messages"][0]["content"]
    remind = plan.node("remind")["task_messages"][0]["content"]
    assert "at 2026-03-03T10:30:00+05:30 at the clinic" in remind
    assert "Fasting required: true" in remind


def test_a_summary_prompt_is_rendered_plainly() -> None:
    document = copy.deepcopy(load_example("cod_confirmation"))
    document["nodes"]["reschedule"]["context_strategy"] = {
        "strategy": "reset_with_summary",
        "summary_prompt": "Summarise the call with {{ customer_name }} in one line.",
    }
    strategy = plan_for(document, {**COD_PAYLOAD, "customer_name": "{{ x }}"}).node("reschedule")[
        "context_strategy"
    ]
    assert strategy.strategy is ContextStrategy.RESET_WITH_SUMMARY
    # The FlowManager does not render summary prompts, so the value is not escaped either.
    assert strategy.summary_prompt == "Summarise the call with {{ x }} in one line."


async def test_secret_variables_reach_no_text_of_any_node_or_ending() -> None:
    document = copy.deepcopy(load_example("cod_confirmation"))
    document["variables"]["upi_ref"] = {"type": "string", "secret": True}
    plan = plan_for(document, {**COD_PAYLOAD, "upi_ref": SECRET})
    configs: list[Any] = [plan.initial_node(), *(plan.node(name) for name in plan.node_names)]
    for name in plan.node_names:
        for function in plan.node(name)["functions"]:
            _, next_node = await function.handler({}, SimpleNamespace(current_node=name))
            configs.append(next_node)

    texts = [text for config in configs for text in strings_in(config)]

    assert any("Kurta Co" in text for text in texts)  # the walk does see rendered text
    assert any("cancelled order A-1001" in text for text in texts)  # and the goodbyes
    assert not any(SECRET in text for text in texts)
    assert "upi_ref" not in plan.bindings.texts.values


def test_a_placeholder_in_a_payload_value_stays_literal() -> None:
    plan = cod_plan(customer_name="{{ store_name }} \\{{ order_id }}")
    initial = plan.initial_node()
    greeting = initial["pre_actions"][0]["text"]
    task = initial["task_messages"][0]["content"]

    # Escaped for the FlowManager, which renders these slots again with the same grammar: its
    # second pass gives back the value exactly as the merchant sent it.
    assert render_text(greeting, {}).endswith("speaking with {{ store_name }} \\{{ order_id }}?")
    assert "with {{ store_name }} \\{{ order_id }}. If the person" in render_text(task, {})
    assert "Kurta Co \\" not in greeting


def test_voicemail_plan_renders_the_message_or_hangs_up() -> None:
    appointment = plan_for(load_example("appointment_reminder"), APPOINTMENT_PAYLOAD)
    definition: TemplateDefinition = appointment.definition

    message = voicemail_plan(
        definition, {**appointment.bindings.texts.values, "clinic_name": "{{ x }}"}
    )

    assert appointment.voicemail_message == (
        "Hello Ravi, this is Sunrise Clinic reminding you of your upcoming appointment with "
        "Dr. Mehta. To change it, please call us back. Thank you."
    )
    assert message is not None and "this is {{ x }} reminding" in message
    assert cod_plan().voicemail_message is None


def test_unknown_nodes_and_invalid_payloads_are_refused() -> None:
    with pytest.raises(KeyError):
        cod_plan().node("nowhere")
    with pytest.raises(PayloadInvalid, match="payload.amount"):
        cod_plan(amount="a lot")
