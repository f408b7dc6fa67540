"""Conversation-template schema: parsing, cross-field checks, payload checking and rendering."""

from __future__ import annotations

import importlib
import json
import warnings
from datetime import datetime, time
from typing import Any

import pytest
from pydantic import ValidationError

from shared.enums import Outcome
from shared.templates import (
    BUSINESS_OUTCOMES,
    PayloadInvalid,
    PayloadProblem,
    TemplateDefinition,
    TemplateInvalid,
    UnknownVariable,
    check_payload,
    escape_placeholders,
    example_names,
    load_example,
    parse_template,
    render_text,
    render_variables,
    rendered_texts,
)
from shared.templates.variables import PLACEHOLDER


def _minimal() -> dict[str, Any]:
    """The smallest valid template: one node, one way to end."""
    return {
        "name": "Minimal",
        "language": "en-IN",
        "greeting": "Hello {{ customer_name }}.",
        "variables": {"customer_name": {"type": "string"}},
        "initial_node": "start",
        "nodes": {
            "start": {
                "task_messages": [{"role": "developer", "content": "Ask how they are."}],
                "functions": [
                    {
                        "name": "finish",
                        "description": "The customer answered.",
                        "effect": {"kind": "end_call", "outcome": "COMPLETED"},
                    }
                ],
            }
        },
        "voice": {"provider": "espeak", "voice_id": "en"},
        "calling_window": None,
    }


def _cod() -> dict[str, Any]:
    return load_example("cod_confirmation")


def _problems(data: object) -> list[str]:
    with pytest.raises(TemplateInvalid) as info:
        parse_template(data)
    assert info.value.problems, "TemplateInvalid without problems"
    return info.value.problems


def _cod_payload() -> dict[str, object]:
    return {
        "customer_name": "Asha Verma",
        "store_name": "Kurta Ghar",
        "order_id": "KG-1042",
        "amount": 1299,
        "items": "2 cotton kurtas",
        "delivery_date": "2025-03-14",
    }


# --- the examples ------------------------------------------------------------------------------


def test_example_names_are_the_shipped_files() -> None:
    assert example_names() == ["appointment_reminder", "cod_confirmation", "front_desk"]


@pytest.mark.parametrize("name", ["cod_confirmation", "appointment_reminder"])
def test_examples_parse_and_are_complete(name: str) -> None:
    definition = parse_template(load_example(name))

    assert definition.language == "en-IN"
    assert definition.calling_window is not None
    assert definition.voice.fallback is not None
    assert definition.voicemail.action in ("hang_up", "leave_message")
    assert definition.retry_policy.intervals_s
    texts = dict(rendered_texts(definition))
    assert any(PLACEHOLDER.search(text) for path, text in texts.items() if "task_messages" in path)
    assert "{{" in definition.greeting


@pytest.mark.parametrize("name", ["cod_confirmation", "appointment_reminder"])
def test_a_parsed_template_round_trips_through_its_json_dump(name: str) -> None:
    definition = parse_template(load_example(name))

    assert parse_template(json.loads(definition.model_dump_json())) == definition


def test_cod_example_renders_with_a_realistic_payload() -> None:
    definition = parse_template(_cod())
    payload = {**_cod_payload(), "shipping_address": {"city": "Pune"}, "sku_count": 2}

    assert check_payload(definition, payload) == []
    values = render_variables(definition, payload)
    rendered = {path: render_text(text, values) for path, text in rendered_texts(definition)}

    assert "KG-1042" in rendered["nodes.confirm_order.task_messages[0].content"]
    assert "1299 rupees" in rendered["nodes.confirm_order.functions[0].effect.goodbye"]
    assert not any(PLACEHOLDER.search(text) for text in rendered.values())


def test_load_example_rejects_unknown_and_path_like_names() -> None:
    with pytest.raises(ValueError, match="no example template"):
        load_example("does_not_exist")
    with pytest.raises(ValueError, match="no example template"):
        load_example("../schema")


# --- the node graph ----------------------------------------------------------------------------


def test_unknown_initial_node_is_rejected() -> None:
    data = _minimal()
    data["initial_node"] = "strat"

    assert _problems(data) == ["initial_node: unknown node 'strat' (did you mean 'start'?)"]


def test_transition_to_unknown_node_is_rejected_with_its_path() -> None:
    data = _cod()
    data["nodes"]["verify_identity"]["functions"][0]["effect"]["to"] = "confirmm"

    problems = _problems(data)

    assert len(problems) == 1
    assert problems[0].startswith(
        "nodes.verify_identity.functions[0].effect.to: unknown node 'confirmm'"
    )


def test_global_function_transition_to_unknown_node_is_rejected() -> None:
    data = _cod()
    data["global_functions"][0]["effect"] = {"kind": "transition", "to": "nowhere"}

    assert _problems(data) == ["global_functions[0].effect.to: unknown node 'nowhere'"]


def test_duplicate_function_names_and_clashes_with_globals_are_rejected() -> None:
    data = _cod()
    node_functions = data["nodes"]["confirm_order"]["functions"]
    node_functions.append({"name": "confirm_order", "description": "Again."})
    node_functions.append({"name": "talk_to_support", "description": "Shadows a global."})
    data["global_functions"].append({"name": "request_callback", "description": "Twice."})

    problems = _problems(data)

    assert problems == [
        "global_functions[2].name: duplicate function 'request_callback' "
        "(also global_functions[0])",
        "nodes.confirm_order.functions[3].name: duplicate function 'confirm_order' "
        "(also functions[0])",
        "nodes.confirm_order.functions[4].name: 'talk_to_support' is also global_functions[1]",
    ]


def test_unreachable_node_is_fine_but_a_dead_end_is_not() -> None:
    data = _minimal()
    data["nodes"]["orphan"] = {
        "task_messages": [{"role": "developer", "content": "Say goodbye."}],
        "post_actions": [{"type": "end_conversation", "outcome": "COMPLETED"}],
    }
    parse_template(data)  # unreachable, but it can end: accepted

    data["nodes"]["stuck"] = {"task_messages": [{"role": "developer", "content": "Chat."}]}
    problems = _problems(data)

    assert len(problems) == 1
    assert problems[0].startswith("nodes.stuck: a call here can neither leave nor end")


def test_a_template_that_can_never_end_the_call_is_rejected() -> None:
    data = _minimal()
    data["nodes"]["start"]["functions"][0]["effect"] = {"kind": "transition", "to": "start"}

    assert _problems(data) == [
        "nodes: nothing ever ends the call; add a function with an end_call effect "
        "or an end_conversation action"
    ]


def test_an_end_conversation_action_is_a_way_to_end() -> None:
    data = _minimal()
    data["nodes"]["start"]["functions"][0]["effect"] = {"kind": "transition", "to": "start"}
    data["nodes"]["start"]["post_actions"] = [{"type": "end_conversation", "text": "Bye."}]

    definition = parse_template(data)

    action = definition.nodes["start"].post_actions[0]
    assert action.type == "end_conversation"
    assert action.outcome is Outcome.COMPLETED


# --- outcomes and transfers --------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["NO_ANSWER", "DNC", "VOICEMAIL", "MAX_ATTEMPTS"])
def test_end_call_with_a_platform_outcome_is_rejected(outcome: str) -> None:
    data = _minimal()
    data["nodes"]["start"]["functions"][0]["effect"]["outcome"] = outcome

    problems = _problems(data)

    assert len(problems) == 1
    assert problems[0].startswith(
        f"nodes.start.functions[0].effect.outcome: '{outcome}' is recorded by the platform"
    )


def test_end_call_with_an_unknown_outcome_is_rejected() -> None:
    data = _minimal()
    data["nodes"]["start"]["functions"][0]["effect"]["outcome"] = "CONFIRMD"

    (problem,) = _problems(data)

    assert problem.startswith("nodes.start.functions[0].effect.outcome: unknown outcome 'CONFIRMD'")


def test_end_conversation_with_a_platform_outcome_is_rejected() -> None:
    data = _minimal()
    data["nodes"]["start"]["pre_actions"] = [{"type": "end_conversation", "outcome": "BUSY"}]

    (problem,) = _problems(data)

    assert problem.startswith("nodes.start.pre_actions[0].outcome: 'BUSY' is recorded")


def test_every_business_outcome_is_accepted_by_end_call() -> None:
    assert Outcome.CONFIRMED in BUSINESS_OUTCOMES and Outcome.NO_ANSWER not in BUSINESS_OUTCOMES
    for outcome in sorted(BUSINESS_OUTCOMES):
        data = _minimal()
        data["nodes"]["start"]["functions"][0]["effect"]["outcome"] = outcome.value
        effect = parse_template(data).nodes["start"].functions[0].effect
        assert effect is not None and effect.kind == "end_call" and effect.outcome is outcome


@pytest.mark.parametrize("number", ["12345", "+91123", "not a number", "+1 555 000"])
def test_transfer_to_an_invalid_number_is_rejected(number: str) -> None:
    data = _cod()
    data["global_functions"][1]["effect"]["number"] = number

    (problem,) = _problems(data)

    assert problem.startswith("global_functions[1].effect.number: expected an E.164 number")


def test_transfer_and_outbound_numbers_are_stored_as_e164() -> None:
    data = _cod()
    data["global_functions"][1]["effect"]["number"] = "+91 80 4718 1234"
    data["outbound_number"] = "+91 22 6123 4500"

    definition = parse_template(data)

    effect = definition.global_functions[1].effect
    assert effect is not None and effect.kind == "transfer"
    assert effect.number == "+918047181234"
    assert definition.outbound_number == "+912261234500"


# --- variables in text -------------------------------------------------------------------------


def test_undeclared_variable_in_a_task_message_is_rejected_with_its_path() -> None:
    data = _cod()
    data["nodes"]["confirm_order"]["task_messages"][0]["content"] += " Total {{ amout }}."

    assert _problems(data) == [
        "nodes.confirm_order.task_messages[0].content: unknown variable 'amout' "
        "(did you mean 'amount'?)"
    ]


def test_placeholders_tolerate_whitespace_inside_the_braces() -> None:
    data = _minimal()
    data["greeting"] = "Hi {{customer_name}}, {{ customer_name }}, {{  customer_name\t}}."

    definition = parse_template(data)

    assert render_text(definition.greeting, {"customer_name": "Asha"}) == "Hi Asha, Asha, Asha."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello {{ customer name }}", "malformed placeholder"),
        ("Hello {{customer_name}", "malformed placeholder"),
        ("Hello {{ order.id }}", "'order.id': variables are flat"),
    ],
)
def test_malformed_and_nested_placeholders_are_rejected(text: str, expected: str) -> None:
    data = _minimal()
    data["greeting"] = text

    (problem,) = _problems(data)

    assert problem.startswith(f"greeting: {expected}")


def test_escaped_placeholder_is_literal_and_needs_no_variable() -> None:
    data = _minimal()
    data["greeting"] = "Say \\{{ code }} literally to {{ customer_name }}."

    definition = parse_template(data)

    assert render_text(definition.greeting, {"customer_name": "Asha"}) == (
        "Say {{ code }} literally to Asha."
    )


def test_secret_variable_in_any_rendered_text_is_rejected() -> None:
    data = _cod()
    data["variables"]["otp"] = {"type": "string", "secret": True}
    data["greeting"] += " Your code is {{ otp }}."
    data["nodes"]["confirm_order"]["functions"][0]["effect"]["goodbye"] = "Code {{otp}}."
    data["voicemail"] = {"action": "leave_message", "message": "Call us, code {{otp}}."}

    problems = _problems(data)

    secret = "variable 'otp' is secret and may never be rendered into text"
    assert problems == [
        f"greeting: {secret}",
        f"voicemail.message: {secret}",
        f"nodes.confirm_order.functions[0].effect.goodbye: {secret}",
    ]


def test_secret_variable_is_checked_but_never_rendered() -> None:
    data = _minimal()
    data["variables"]["api_token"] = {"type": "string", "secret": True}
    definition = parse_template(data)

    missing = check_payload(definition, {"customer_name": "Asha"})
    values = render_variables(definition, {"customer_name": "Asha", "api_token": "s3cr3t"})

    assert missing == [PayloadProblem("payload.api_token", "required variable is missing")]
    assert values == {"customer_name": "Asha"}
    with pytest.raises(UnknownVariable):
        render_text("token {{ api_token }}", values)


def test_placeholders_in_descriptions_are_rejected() -> None:
    data = _minimal()
    data["nodes"]["start"]["functions"][0]["description"] = "When {{ customer_name }} answers."

    (problem,) = _problems(data)

    assert problem == (
        "nodes.start.functions[0].description: descriptions are not rendered; remove the {{ }}"
    )


def test_summary_prompt_is_rendered_text_and_required_with_reset_with_summary() -> None:
    data = _minimal()
    node = data["nodes"]["start"]
    node["context_strategy"] = {"strategy": "reset_with_summary"}
    assert _problems(data) == [
        "nodes.start.context_strategy.summary_prompt: required with reset_with_summary"
    ]

    node["context_strategy"]["summary_prompt"] = "Summarise for {{ nobody }}."
    assert _problems(data) == [
        "nodes.start.context_strategy.summary_prompt: unknown variable 'nobody'"
    ]


# --- many problems at once ---------------------------------------------------------------------


def test_all_cross_field_problems_are_listed_together() -> None:
    data = _cod()
    data["initial_node"] = "nope"
    data["nodes"]["verify_identity"]["functions"][0]["effect"]["to"] = "confirmm"
    data["greeting"] += " {{ missing_var }}"

    with pytest.raises(TemplateInvalid) as info:
        parse_template(data)

    paths = [problem.split(":")[0] for problem in info.value.problems]
    assert paths == ["initial_node", "nodes.verify_identity.functions[0].effect.to", "greeting"]
    assert all(problem in str(info.value) for problem in info.value.problems)
    assert str(info.value).startswith("template invalid: 3 problems")


def test_all_field_problems_are_listed_together() -> None:
    data = _cod()
    data["voice"]["provider"] = "espek"
    data["retry_policy"]["max_attempts"] = 0
    data["nodes"]["reschedule"]["respond_imediately"] = False
    data["variables"]["amount"]["type"] = "float"
    del data["name"]

    paths = {problem.split(":")[0] for problem in _problems(data)}

    assert paths == {
        "voice.provider",
        "retry_policy.max_attempts",
        "nodes.reschedule.respond_imediately",
        "variables.amount.type",
        "name",
    }


def test_flow_problems_are_reported_with_field_problems_outside_the_flow() -> None:
    data = _cod()
    data["voice"]["provider"] = "espek"
    data["calling_window"]["start"] = "21:00"
    data["nodes"]["verify_identity"]["functions"][0]["effect"]["to"] = "confirmm"

    problems = _problems(data)

    assert problems[0] == (
        "voice.provider: Input should be 'espeak', 'tone', 'flaky', 'elevenlabs' or 'cartesia' "
        "(got 'espek')"
    )
    assert problems[1] == "calling_window.end: must be after start (21:00 - 19:30)"
    assert problems[2].startswith("nodes.verify_identity.functions[0].effect.to: unknown node")
    assert len(problems) == 3


def test_unknown_keys_are_errors_everywhere() -> None:
    data = _cod()
    data["colour"] = "blue"
    data["nodes"]["reschedule"]["pre_actions"][0]["txt"] = "typo"
    data["global_functions"][1]["effect"]["numbr"] = "+918047181234"

    assert set(_problems(data)) == {
        "colour: unknown field",
        "nodes.reschedule.pre_actions[0].txt: unknown field",
        "global_functions[1].effect.numbr: unknown field",
    }


def test_non_object_template_is_rejected() -> None:
    assert _problems(["not", "a", "template"]) == ["$: expected a JSON object"]


def test_definition_is_frozen() -> None:
    definition = parse_template(_minimal())

    with pytest.raises(ValidationError):
        definition.greeting = "changed"  # type: ignore[misc]  # the point: frozen


# --- model-level rules -------------------------------------------------------------------------


def test_variable_rules() -> None:
    data = _minimal()
    data["variables"].update(
        {
            "bad-name": {"type": "string"},
            "count": {"type": "integer", "required": False, "default": True},
            "currency": {"type": "string", "default": "INR"},
            "token": {"type": "string", "secret": True, "required": False, "default": "x"},
        }
    )

    assert _problems(data) == [
        "variables.bad-name: 'bad-name' is not a valid name: letters, digits and _, "
        "not starting with a digit, at most 64 characters",
        "variables.count.default: expected an integer, got boolean",
        'variables.currency.required: a default makes a variable optional; set "required": false',
        "variables.token.default: a secret variable may not have a default",
    ]


def test_function_property_enums_must_fit_their_type() -> None:
    data = _minimal()
    data["nodes"]["start"]["functions"][0]["properties"] = {
        "slot": {"type": "integer", "enum": [1, "two"]},
        "ok": {"type": "boolean", "enum": [1]},
        "size": {"type": "string", "enum": ["s", "s"]},
    }

    assert _problems(data) == [
        "nodes.start.functions[0].properties.slot.enum[1]: expected an integer, got string",
        "nodes.start.functions[0].properties.ok.enum: a boolean property takes no enum",
        "nodes.start.functions[0].properties.size.enum: values repeat",
    ]


def test_function_required_names_declared_properties_once() -> None:
    data = _minimal()
    data["nodes"]["start"]["functions"][0].update(
        {"properties": {"slot": {"type": "integer"}}, "required": ["slot", "missing", "slot"]}
    )

    assert _problems(data) == [
        "nodes.start.functions[0].required[1]: 'missing' is not one of the properties",
        "nodes.start.functions[0].required[2]: 'slot' is listed twice",
    ]


@pytest.mark.parametrize(
    ("start", "end"), [("19:00", "09:00"), ("10:00", "10:00"), ("23:59", "00:00")]
)
def test_calling_window_start_must_be_before_end(start: str, end: str) -> None:
    data = _minimal()
    data["calling_window"] = {"days": ["mon"], "start": start, "end": end}

    assert _problems(data) == [f"calling_window.end: must be after start ({start} - {end})"]


@pytest.mark.parametrize("value", ["9:00", "24:00", "10:60", "10.00"])
def test_calling_window_times_must_be_hh_mm(value: str) -> None:
    data = _minimal()
    data["calling_window"] = {"days": ["mon"], "start": value, "end": "23:00"}

    assert _problems(data) == [
        f"calling_window.start: '{value}' is not a 24-hour time HH:MM like 09:30"
    ]


def test_calling_window_helpers() -> None:
    data = _minimal()
    data["calling_window"] = {"days": ["mon", "sat"], "start": "09:30", "end": "19:00"}
    window = parse_template(data).calling_window
    assert window is not None

    assert (window.start_time, window.end_time) == (time(9, 30), time(19, 0))
    assert window.weekday_numbers == frozenset({0, 5})
    assert window.is_open_at(datetime(2025, 3, 10, 9, 30))  # a Monday, at the opening
    assert not window.is_open_at(datetime(2025, 3, 10, 19, 0))  # the end is exclusive
    assert not window.is_open_at(datetime(2025, 3, 11, 12, 0))  # a Tuesday


def test_calling_window_is_a_required_choice_and_null_means_always() -> None:
    data = _minimal()
    assert parse_template(data).calling_window is None

    del data["calling_window"]
    assert _problems(data) == ["calling_window: required field is missing"]


def test_retry_policy_defaults_and_limits() -> None:
    data = _minimal()
    policy = parse_template(data).retry_policy
    assert policy.max_attempts == 3
    assert policy.retry_on == [Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED, Outcome.VOICEMAIL]
    assert [policy.delay_before_attempt_s(n) for n in (2, 3)] == [1800, 7200]

    data["retry_policy"] = {"max_attempts": 5, "intervals_s": [600]}
    policy = parse_template(data).retry_policy
    assert [policy.delay_before_attempt_s(n) for n in (2, 3, 4, 5)] == [600, 600, 600, 600]

    data["retry_policy"] = {"max_attempts": 11, "retry_on": ["NO_ANSWER", "DNC", "CONFIRMED"]}
    problems = _problems(data)
    assert problems[0].startswith("retry_policy.max_attempts: Input should be less than")
    assert problems[1].startswith("retry_policy.retry_on[1]: cannot retry on 'DNC'")
    assert problems[2].startswith("retry_policy.retry_on[2]: cannot retry on 'CONFIRMED'")

    data["retry_policy"] = {"max_attempts": 2, "intervals_s": [600, 900]}
    (problem,) = _problems(data)
    assert problem.startswith("retry_policy.intervals_s: 2 intervals for 1 retries")


def test_voice_fallback_must_be_another_provider() -> None:
    data = _minimal()
    data["voice"] = {
        "provider": "cartesia",
        "voice_id": "a",
        "fallback": {"provider": "cartesia", "voice_id": "b"},
    }

    assert _problems(data) == [
        "voice.fallback.provider: must differ from the primary provider it stands in for"
    ]


def test_provider_names_are_checked() -> None:
    data = _minimal()
    data["stt"] = "whisper"
    data["llm"] = "gpt"

    paths = [problem.split(":")[0] for problem in _problems(data)]

    assert paths == ["stt", "llm"]


def test_voicemail_message_rules() -> None:
    data = _minimal()
    data["voicemail"] = {"action": "leave_message"}
    assert _problems(data) == ["voicemail.message: required with leave_message"]

    data["voicemail"] = {"action": "hang_up", "message": "Hi"}
    assert _problems(data) == ["voicemail.message: not used with hang_up; use leave_message"]


# --- payloads ----------------------------------------------------------------------------------


@pytest.fixture
def typed_definition() -> TemplateDefinition:
    data = _minimal()
    data["variables"] = {
        "customer_name": {"type": "string"},
        "quantity": {"type": "integer"},
        "amount": {"type": "number"},
        "prepaid": {"type": "boolean"},
        "delivery_date": {"type": "date"},
        "slot_at": {"type": "datetime"},
        "note": {"type": "string", "required": False},
        "currency": {"type": "string", "required": False, "default": "INR"},
    }
    return parse_template(data)


def _valid_payload() -> dict[str, object]:
    return {
        "customer_name": "Asha",
        "quantity": 2,
        "amount": 899.5,
        "prepaid": False,
        "delivery_date": "2025-03-14",
        "slot_at": "2025-03-14T10:30:00+05:30",
    }


def test_check_payload_accepts_a_valid_payload_with_extra_keys(
    typed_definition: TemplateDefinition,
) -> None:
    payload = {**_valid_payload(), "order": {"lines": [1, 2]}, "merchant_ref": 7}

    assert check_payload(typed_definition, payload) == []


def test_check_payload_reports_missing_required_variables(
    typed_definition: TemplateDefinition,
) -> None:
    payload = _valid_payload()
    del payload["customer_name"]
    payload["quantity"] = None

    assert check_payload(typed_definition, payload) == [
        PayloadProblem("payload.customer_name", "required variable is missing"),
        PayloadProblem("payload.quantity", "required variable is missing"),
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("quantity", True, "expected an integer, got boolean"),
        ("quantity", 2.0, "expected an integer, got number"),
        ("quantity", "2", "expected an integer, got string"),
        ("amount", False, "expected a number, got boolean"),
        ("amount", "899", "expected a number, got string"),
        ("prepaid", 1, "expected a boolean, got integer"),
        ("customer_name", 42, "expected a string, got integer"),
        ("delivery_date", "14/03/2025", "expected an ISO 8601 date (YYYY-MM-DD)"),
        ("delivery_date", "2025-02-30", "expected an ISO 8601 date (YYYY-MM-DD)"),
        ("delivery_date", 20250314, "expected an ISO 8601 date string (YYYY-MM-DD), got integer"),
        ("slot_at", "tomorrow 10am", "expected an ISO 8601 datetime"),
    ],
)
def test_check_payload_reports_wrong_types(
    typed_definition: TemplateDefinition, field: str, value: object, message: str
) -> None:
    payload = {**_valid_payload(), field: value}

    (problem,) = check_payload(typed_definition, payload)

    assert problem.field == f"payload.{field}"
    assert problem.message.startswith(message)


def test_check_payload_accepts_an_integer_for_a_number(
    typed_definition: TemplateDefinition,
) -> None:
    assert check_payload(typed_definition, {**_valid_payload(), "amount": 899}) == []


# --- rendering ---------------------------------------------------------------------------------


def test_render_variables_applies_defaults_and_formats_values(
    typed_definition: TemplateDefinition,
) -> None:
    values = render_variables(typed_definition, {**_valid_payload(), "amount": 1299.0})

    assert values == {
        "customer_name": "Asha",
        "quantity": "2",
        "amount": "1299",
        "prepaid": "false",
        "delivery_date": "2025-03-14",
        "slot_at": "2025-03-14T10:30:00+05:30",
        "note": "",
        "currency": "INR",
    }


def test_render_variables_refuses_an_invalid_payload(
    typed_definition: TemplateDefinition,
) -> None:
    with pytest.raises(PayloadInvalid) as info:
        render_variables(typed_definition, {**_valid_payload(), "quantity": True})

    assert info.value.problems == [
        PayloadProblem("payload.quantity", "expected an integer, got boolean")
    ]


def test_render_text_never_expands_a_value_again() -> None:
    definition = parse_template(_cod())
    payload = {**_cod_payload(), "customer_name": "{{order_id}}", "items": "{{ store_name }}"}
    values = render_variables(definition, payload)

    goodbye = render_text("Thanks {{customer_name}}, {{ items }} for {{order_id}}.", values)

    assert goodbye == "Thanks {{order_id}}, {{ store_name }} for KG-1042."


def test_render_text_raises_on_unknown_names() -> None:
    with pytest.raises(UnknownVariable) as info:
        render_text("Hi {{ name }} and {{ other }}", {"name": "Asha"})

    assert info.value.name == "other"
    assert str(info.value) == "no value for template variable 'other'"


@pytest.mark.parametrize(
    "text", ["{{ order_id }}", "\\{{x}}", "a {{b}} \\{{ c }} {{ d.e }} {not} {{ f g }}", ""]
)
def test_escape_placeholders_survives_a_second_rendering(text: str) -> None:
    escaped = escape_placeholders(text)

    assert render_text(escaped, {}) == text


def test_placeholder_grammar_is_pipecat_flow_managers() -> None:
    # The media worker hands rendered text to pipecat's FlowManager, which renders `{{ key }}`
    # itself; `escape_placeholders` only protects that text if both grammars are the same.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pipecat imports `audioop`
        manager = importlib.import_module("pipecat.flows.manager")

    assert manager._PLACEHOLDER.pattern == PLACEHOLDER.pattern


@pytest.mark.parametrize("name", ["cod_confirmation", "appointment_reminder"])
def test_stored_form_parses_back_to_the_same_template(name: str) -> None:
    """Templates are stored as their full JSON dump (nulls included) and parsed again."""
    definition = parse_template(load_example(name))
    assert parse_template(definition.model_dump(mode="json")) == definition
