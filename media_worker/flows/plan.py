"""`build_flow`: a validated template and a lead's payload as pipecat Flows node configs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog
from pipecat.flows import ContextStrategy, ContextStrategyConfig, FlowsFunctionSchema, NodeConfig

from media_worker.flows.actions import template_actions, tts_say_action
from media_worker.flows.ending import FlowBindings, OnConversationEnd
from media_worker.flows.functions import function_schema
from media_worker.flows.routing import OnVoiceChange, Router, RouteTarget, Summarize
from media_worker.flows.texts import TextRenderer
from media_worker.flows.voicemail import voicemail_plan
from media_worker.record import CallRecord
from shared.templates import (
    ContextStrategySpec,
    NodeSpec,
    PayloadInvalid,
    TemplateDefinition,
    render_variables,
)

log = structlog.get_logger(__name__)


def _no_builtins() -> list[FlowsFunctionSchema]:
    return []


@dataclass(frozen=True)
class FlowPlan:
    """One call's conversation as pipecat node configs.

    Start the FlowManager with `initial_node()`: the template's initial node with the greeting
    spoken first, as a `tts_say` pre-action. `node(name)` is any template node as a transition
    enters it (the greeting is not repeated). Each call builds a fresh config, since pipecat
    may mutate what it is given. Global functions are already in every node's `functions`: do
    not also pass them to `FlowManager(global_functions=...)`; so are the `builtins` (an
    orchestrator's `route_to_agent`), which is how an agent's nodes, entered by a route, offer
    the agent's globals and nothing of the orchestrator's.

    `prefix` namespaces node names (an agent's nodes are `<agent>.<node>`), so that one call's
    record never confuses the orchestrator's nodes with an agent's.
    """

    definition: TemplateDefinition
    bindings: FlowBindings
    prefix: str = ""
    builtins: Callable[[], list[FlowsFunctionSchema]] = _no_builtins

    @property
    def initial_node_name(self) -> str:
        return self.definition.initial_node

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(self.definition.nodes)

    @property
    def voicemail_message(self) -> str | None:
        """What to leave on voicemail, rendered; None to hang up."""
        return voicemail_plan(self.definition, self.bindings.texts.values)

    def greeting_text(self) -> str:
        """The greeting, rendered for the FlowManager (it renders `tts_say` text again)."""
        return self.bindings.texts.for_flow_manager(self.definition.greeting)

    def initial_node(self) -> NodeConfig:
        config = self.node(self.definition.initial_node)
        greeting = tts_say_action(self.greeting_text())
        config["pre_actions"] = [greeting, *config.get("pre_actions", [])]
        return config

    def node(self, name: str) -> NodeConfig:
        """The config of template node `name`; `KeyError` for a name the template lacks."""
        return self._node_config(name, self.definition.nodes[name])

    def _node_config(self, name: str, spec: NodeSpec) -> NodeConfig:
        texts = self.bindings.texts
        functions = [*self.definition.global_functions, *spec.functions]
        config: NodeConfig = {
            "name": self.prefix + name,
            "task_messages": [
                {"role": message.role, "content": texts.for_flow_manager(message.content)}
                for message in spec.task_messages
            ],
            "functions": [
                *(function_schema(f, self.bindings, self.node) for f in functions),
                *self.builtins(),
            ],
            "pre_actions": template_actions(spec.pre_actions, self.bindings),
            "post_actions": template_actions(spec.post_actions, self.bindings),
            "respond_immediately": spec.respond_immediately,
        }
        if spec.role_message is not None:
            config["role_message"] = texts.for_flow_manager(spec.role_message)
        if spec.context_strategy is not None:
            config["context_strategy"] = _context_strategy(spec.context_strategy, texts)
        return config


def build_flow(
    definition: TemplateDefinition,
    payload: Mapping[str, object],
    *,
    record: CallRecord,
    on_end: OnConversationEnd,
    agents: Mapping[str, TemplateDefinition] | None = None,
    on_voice_change: OnVoiceChange | None = None,
    summarize: Summarize | None = None,
) -> FlowPlan:
    """Render the lead's variables once (secrets left out) and bind the call's handlers.

    For an orchestrator, `agents` (agent name -> its template, `CallContext.agents`) are
    rendered from the same payload and offered through `route_to_agent`; an agent missing from
    `agents`, or whose variables the payload does not fit, is left out of the call. See
    `routing` for `on_voice_change` and `summarize` (default: the last turns, as said).

    Raises `PayloadInvalid` when the payload does not fit the template's variables.
    """
    texts = TextRenderer(render_variables(definition, payload))
    bindings = FlowBindings(record=record, on_end=on_end, texts=texts)
    spec = definition.orchestrator
    if spec is None:
        return FlowPlan(definition, bindings)
    targets: dict[str, RouteTarget] = {}
    for agent in spec.agents:
        target = (agents or {}).get(agent.name)
        if target is None:
            log.warning("agent_not_loaded", agent=agent.name)
            continue
        try:
            values = render_variables(target, payload)
        except PayloadInvalid as exc:
            fields = [problem.field for problem in exc.problems]  # names only: no lead data
            log.warning("agent_payload_invalid", agent=agent.name, fields=fields)
            continue
        agent_bindings = FlowBindings(record=record, on_end=on_end, texts=TextRenderer(values))
        targets[agent.name] = RouteTarget(
            agent, FlowPlan(target, agent_bindings, prefix=f"{agent.name}.")
        )
    router = Router(
        spec, targets, record=record, on_voice_change=on_voice_change, summarize=summarize
    )
    return FlowPlan(definition, bindings, builtins=router.functions)


def _context_strategy(spec: ContextStrategySpec, texts: TextRenderer) -> ContextStrategyConfig:
    # The FlowManager does not render the summary prompt, so it is rendered plainly.
    prompt = None if spec.summary_prompt is None else texts.plain(spec.summary_prompt)
    # The template's strategy names are pipecat's `ContextStrategy` values.
    return ContextStrategyConfig(strategy=ContextStrategy(spec.strategy), summary_prompt=prompt)
