"""`build_flow`: a validated template and a lead's payload as pipecat Flows node configs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipecat.flows import ContextStrategy, ContextStrategyConfig, NodeConfig

from media_worker.flows.actions import template_actions, tts_say_action
from media_worker.flows.ending import FlowBindings, OnConversationEnd
from media_worker.flows.functions import function_schema
from media_worker.flows.texts import TextRenderer
from media_worker.flows.voicemail import voicemail_plan
from media_worker.record import CallRecord
from shared.templates import ContextStrategySpec, NodeSpec, TemplateDefinition, render_variables


@dataclass(frozen=True)
class FlowPlan:
    """One call's conversation as pipecat node configs.

    Start the FlowManager with `initial_node()`: the template's initial node with the greeting
    spoken first, as a `tts_say` pre-action. `node(name)` is any template node as a transition
    enters it (the greeting is not repeated). Each call builds a fresh config, since pipecat
    may mutate what it is given. Global functions are already in every node's `functions`: do
    not also pass them to `FlowManager(global_functions=...)`.
    """

    definition: TemplateDefinition
    bindings: FlowBindings

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

    def initial_node(self) -> NodeConfig:
        config = self.node(self.definition.initial_node)
        greeting = tts_say_action(self.bindings.texts.for_flow_manager(self.definition.greeting))
        config["pre_actions"] = [greeting, *config.get("pre_actions", [])]
        return config

    def node(self, name: str) -> NodeConfig:
        """The config of template node `name`; `KeyError` for a name the template lacks."""
        return self._node_config(name, self.definition.nodes[name])

    def _node_config(self, name: str, spec: NodeSpec) -> NodeConfig:
        texts = self.bindings.texts
        functions = [*self.definition.global_functions, *spec.functions]
        config: NodeConfig = {
            "name": name,
            "task_messages": [
                {"role": message.role, "content": texts.for_flow_manager(message.content)}
                for message in spec.task_messages
            ],
            "functions": [function_schema(f, self.bindings, self.node) for f in functions],
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
) -> FlowPlan:
    """Render the lead's variables once (secrets left out) and bind the call's handlers.

    Raises `PayloadInvalid` when the payload does not fit the template's variables.
    """
    texts = TextRenderer(render_variables(definition, payload))
    return FlowPlan(definition, FlowBindings(record=record, on_end=on_end, texts=texts))


def _context_strategy(spec: ContextStrategySpec, texts: TextRenderer) -> ContextStrategyConfig:
    # The FlowManager does not render the summary prompt, so it is rendered plainly.
    prompt = None if spec.summary_prompt is None else texts.plain(spec.summary_prompt)
    # The template's strategy names are pipecat's `ContextStrategy` values.
    return ContextStrategyConfig(strategy=ContextStrategy(spec.strategy), summary_prompt=prompt)
