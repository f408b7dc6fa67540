"""Template functions as pipecat `FlowsFunctionSchema`s: the one place an effect becomes a handler.

- no effect: record the call and its arguments; return `({"status": "recorded"}, None)`, so
  the conversation stays on the node and the LLM answers;
- `transition`: record the move; return `(None, <target node config>)`;
- `end_call`: record, decide the outcome, tell the session; return `(None, <ending node>)`,
  which speaks the goodbye and ends the call (see `ending.ending_node`);
- `transfer`: record, decide `TRANSFERRED`, keep the target; return `(None, <ending node>)`
  speaking the announcement (or a default handoff line).

Every handler has pipecat 1.14's signature `(args: FlowArgs, flow_manager: FlowManager)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, assert_never

from pipecat.flows import FlowArgs, FlowManager, FlowsFunctionSchema, NodeConfig

from media_worker.flows.ending import FlowBindings, ending_node
from shared.enums import Outcome
from shared.templates import (
    EndCallEffect,
    FunctionProperty,
    FunctionSpec,
    TransferEffect,
    TransitionEffect,
)

HandlerResult = tuple[dict[str, str] | None, NodeConfig | None]
BuiltinHandler = Callable[[FlowArgs, FlowManager], Awaitable[HandlerResult]]
NodeLookup = Callable[[str], NodeConfig]

DEFAULT_HANDOFF_LINE = "Please stay on the line while I connect you."
"""Said before a transfer when the template gives no announcement."""


def function_schema(
    spec: FunctionSpec, bindings: FlowBindings, node_named: NodeLookup
) -> FlowsFunctionSchema:
    """`spec` as pipecat takes it; `node_named` builds a template node's config for transitions."""
    return FlowsFunctionSchema(
        name=spec.name,
        description=spec.description,
        properties={name: _json_schema(prop) for name, prop in spec.properties.items()},
        required=list(spec.required),
        handler=handler_for(spec, bindings, node_named),
    )


def handler_for(
    spec: FunctionSpec, bindings: FlowBindings, node_named: NodeLookup
) -> BuiltinHandler:
    """The handler of `spec`, chosen by its effect (the list in the module docstring)."""
    effect = spec.effect
    if effect is None:
        return _stay(spec.name, bindings)
    if isinstance(effect, TransitionEffect):
        return _transition(spec.name, effect, bindings, node_named)
    if isinstance(effect, EndCallEffect):
        return _end_call(spec.name, effect, bindings)
    if isinstance(effect, TransferEffect):
        return _transfer(spec.name, effect, bindings)
    assert_never(effect)


def ending_node_name(function: str) -> str:
    """Node names of endings hold a `:`, which no template node name can."""
    return f"{function}:end"


def _json_schema(prop: FunctionProperty) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": prop.type}
    if prop.description:
        schema["description"] = prop.description
    if prop.enum is not None:
        schema["enum"] = list(prop.enum)
    return schema


def _stay(function: str, bindings: FlowBindings) -> BuiltinHandler:
    async def handle(args: FlowArgs, flow_manager: FlowManager) -> HandlerResult:
        here = flow_manager.current_node
        bindings.record.add_traversal(
            function=function, from_node=here, to_node=here, arguments=args
        )
        return {"status": "recorded"}, None

    return handle


def _transition(
    function: str, effect: TransitionEffect, bindings: FlowBindings, node_named: NodeLookup
) -> BuiltinHandler:
    async def handle(args: FlowArgs, flow_manager: FlowManager) -> HandlerResult:
        target = node_named(effect.to)
        bindings.record.add_traversal(
            function=function,
            from_node=flow_manager.current_node,
            to_node=target.get("name", effect.to),  # an agent's nodes carry its prefix
            arguments=args,
        )
        return None, target

    return handle


def _end_call(function: str, effect: EndCallEffect, bindings: FlowBindings) -> BuiltinHandler:
    async def handle(args: FlowArgs, flow_manager: FlowManager) -> HandlerResult:
        bindings.record.add_traversal(
            function=function, from_node=flow_manager.current_node, to_node=None, arguments=args
        )
        await bindings.conclude(effect.outcome)
        goodbye = None if effect.goodbye is None else bindings.texts.plain(effect.goodbye)
        return None, ending_node(ending_node_name(function), goodbye)

    return handle


def _transfer(function: str, effect: TransferEffect, bindings: FlowBindings) -> BuiltinHandler:
    async def handle(args: FlowArgs, flow_manager: FlowManager) -> HandlerResult:
        bindings.record.add_traversal(
            function=function, from_node=flow_manager.current_node, to_node=None, arguments=args
        )
        await bindings.conclude(Outcome.TRANSFERRED, transfer_to=effect.number)
        announcement = DEFAULT_HANDOFF_LINE
        if effect.announcement is not None:
            announcement = bindings.texts.plain(effect.announcement)
        return None, ending_node(ending_node_name(function), announcement)

    return handle
