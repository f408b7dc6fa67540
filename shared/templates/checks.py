"""Whole-flow checks of a template: node graph, function names, variables in text, a way to end.

Each check returns `"<json.path>: <message>"` lines and never stops at the first problem;
`TemplateFlow`'s model validator raises them together as one `TemplateInvalid`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from shared.templates.orchestrator import ROUTE_FUNCTION
from shared.templates.variables import has_malformed_placeholder, placeholder_names

if TYPE_CHECKING:
    from shared.templates.schema import FunctionSpec, NodeSpec, TemplateFlow, VariableSpec


def flow_problems(flow: TemplateFlow) -> list[str]:
    """Every whole-flow problem of `flow`, in document order per kind."""
    return [
        *_graph_problems(flow),
        *_name_problems(flow),
        *_text_problems(flow),
        *_ending_problems(flow),
    ]


def functions(flow: TemplateFlow) -> Iterator[tuple[str, FunctionSpec]]:
    """Every function of the flow with its path: the global ones, then each node's."""
    for index, function in enumerate(flow.global_functions):
        yield f"global_functions[{index}]", function
    for node_name, node in flow.nodes.items():
        for index, function in enumerate(node.functions):
            yield f"nodes.{node_name}.functions[{index}]", function


def rendered_texts(flow: TemplateFlow) -> Iterator[tuple[str, str]]:
    """Every text rendered with the lead's variables, with its path.

    These are the texts the caller hears or the LLM reads: the greeting, the voicemail message,
    each node's role message, task messages, summary prompt and action texts, and the goodbye
    or announcement of `end_call` and `transfer` effects. The media worker renders exactly
    these; the checks below make sure each one renders.
    """
    yield "greeting", flow.greeting
    if flow.voicemail.message is not None:
        yield "voicemail.message", flow.voicemail.message
    for node_name, node in flow.nodes.items():
        yield from _node_texts(f"nodes.{node_name}", node)
    for path, function in functions(flow):
        effect = function.effect
        if effect is None or effect.kind == "transition":
            continue
        if effect.kind == "end_call" and effect.goodbye is not None:
            yield f"{path}.effect.goodbye", effect.goodbye
        if effect.kind == "transfer" and effect.announcement is not None:
            yield f"{path}.effect.announcement", effect.announcement


def _node_texts(prefix: str, node: NodeSpec) -> Iterator[tuple[str, str]]:
    if node.role_message is not None:
        yield f"{prefix}.role_message", node.role_message
    for index, message in enumerate(node.task_messages):
        yield f"{prefix}.task_messages[{index}].content", message.content
    if node.context_strategy is not None and node.context_strategy.summary_prompt is not None:
        yield f"{prefix}.context_strategy.summary_prompt", node.context_strategy.summary_prompt
    for key, actions in (("pre_actions", node.pre_actions), ("post_actions", node.post_actions)):
        for index, action in enumerate(actions):
            if action.text is not None:
                yield f"{prefix}.{key}[{index}].text", action.text


def _described_texts(flow: TemplateFlow) -> Iterator[tuple[str, str]]:
    """Texts the LLM reads verbatim (function, argument and agent descriptions): never
    rendered."""
    for path, function in functions(flow):
        yield f"{path}.description", function.description
        for name, prop in function.properties.items():
            yield f"{path}.properties.{name}.description", prop.description
    if flow.orchestrator is not None:
        for index, agent in enumerate(flow.orchestrator.agents):
            yield f"orchestrator.agents[{index}].description", agent.description


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- the checks --------------------------------------------------------------------------------


def _graph_problems(flow: TemplateFlow) -> list[str]:
    problems = []
    if flow.initial_node not in flow.nodes:
        hint = _did_you_mean(flow.initial_node, flow.nodes)
        problems.append(f"initial_node: unknown node '{flow.initial_node}'{hint}")
    for path, function in functions(flow):
        effect = function.effect
        if effect is not None and effect.kind == "transition" and effect.to not in flow.nodes:
            hint = _did_you_mean(effect.to, flow.nodes)
            problems.append(f"{path}.effect.to: unknown node '{effect.to}'{hint}")
    problems.extend(_dead_end_problems(flow))
    return problems


def _dead_end_problems(flow: TemplateFlow) -> list[str]:
    """Nodes a call can neither leave nor end in (unreachable nodes are fine, dead ends not).

    An orchestrator's nodes all offer `route_to_agent`, so none is a dead end.
    """
    if flow.orchestrator is not None:
        return []
    if any(function.effect is not None for function in flow.global_functions):
        return []
    problems = []
    for node_name, node in flow.nodes.items():
        leaves = any(function.effect is not None for function in node.functions)
        ends = any(a.type == "end_conversation" for a in (*node.pre_actions, *node.post_actions))
        if not (leaves or ends):
            problems.append(
                f"nodes.{node_name}: a call here can neither leave nor end: no function has an "
                "effect and there is no end_conversation action"
            )
    return problems


def _name_problems(flow: TemplateFlow) -> list[str]:
    problems = [
        f"{path}.name: '{ROUTE_FUNCTION}' is the orchestrator's built-in; choose another name"
        for path, function in functions(flow)
        if function.name == ROUTE_FUNCTION
    ]
    global_index: dict[str, int] = {}
    for index, function in enumerate(flow.global_functions):
        if function.name in global_index:
            problems.append(
                f"global_functions[{index}].name: duplicate function '{function.name}' "
                f"(also global_functions[{global_index[function.name]}])"
            )
        else:
            global_index[function.name] = index
    for node_name, node in flow.nodes.items():
        node_index: dict[str, int] = {}
        for index, function in enumerate(node.functions):
            path = f"nodes.{node_name}.functions[{index}].name"
            if function.name in global_index:
                problems.append(
                    f"{path}: '{function.name}' is also "
                    f"global_functions[{global_index[function.name]}]"
                )
            elif function.name in node_index:
                problems.append(
                    f"{path}: duplicate function '{function.name}' "
                    f"(also functions[{node_index[function.name]}])"
                )
            else:
                node_index[function.name] = index
    return problems


def _text_problems(flow: TemplateFlow) -> list[str]:
    problems = [
        f"{path}: {message}"
        for path, text in rendered_texts(flow)
        for message in placeholder_problems(text, flow.variables)
    ]
    for path, text in _described_texts(flow):
        if placeholder_names(text) or has_malformed_placeholder(text):
            problems.append(f"{path}: descriptions are not rendered; remove the {{{{ }}}}")
    return problems


def placeholder_problems(text: str, variables: Mapping[str, VariableSpec]) -> list[str]:
    """Why `text` cannot be rendered safely with `variables`, one message per problem."""
    problems = []
    if has_malformed_placeholder(text):
        problems.append(
            "malformed placeholder: write {{ name }} with a declared variable, "
            "or \\{{ for literal braces"
        )
    for name in placeholder_names(text):
        spec = variables.get(name)
        if "." in name:
            problems.append(f"'{name}': variables are flat, nested names are not supported")
        elif spec is None:
            hint = _did_you_mean(name, variables)
            problems.append(f"unknown variable '{name}'{hint}")
        elif spec.secret:
            problems.append(f"variable '{name}' is secret and may never be rendered into text")
    return problems


def _ending_problems(flow: TemplateFlow) -> list[str]:
    if flow.orchestrator is not None:
        return []  # its agents end the call
    for _, function in functions(flow):
        if function.effect is not None and function.effect.kind == "end_call":
            return []
    for node in flow.nodes.values():
        if any(a.type == "end_conversation" for a in (*node.pre_actions, *node.post_actions)):
            return []
    return [
        "nodes: nothing ever ends the call; add a function with an end_call effect "
        "or an end_conversation action"
    ]
