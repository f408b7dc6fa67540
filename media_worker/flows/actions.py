"""A template node's `pre_actions` / `post_actions` as pipecat `ActionConfig`s."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipecat.flows import ActionConfig, FlowManager

from media_worker.flows.ending import FlowBindings, end_conversation_action
from shared.enums import Outcome
from shared.templates import EndConversationAction, TtsSayAction


def tts_say_action(text: str, *, append_text_to_context: bool = True) -> ActionConfig:
    """pipecat's built-in `tts_say`; its text is rendered again by the FlowManager, so it takes
    `TextRenderer.for_flow_manager` text."""
    return {"type": "tts_say", "text": text, "append_text_to_context": append_text_to_context}


def conclude_action(bindings: FlowBindings, outcome: Outcome) -> ActionConfig:
    """A pipecat `function` action recording `outcome` when the pipeline reaches it.

    A `function` action runs once everything queued before it has been processed, and the
    `end_conversation` after it waits for it, so the outcome is recorded exactly when the
    template's ending is carried out, not when the node is merely entered.
    """

    async def conclude(action: dict[str, Any], flow_manager: FlowManager) -> None:
        await bindings.conclude(outcome)

    return {"type": "function", "handler": conclude}


def template_actions(
    actions: Sequence[TtsSayAction | EndConversationAction], bindings: FlowBindings
) -> list[ActionConfig]:
    """Map template actions in order; an `end_conversation` also records its outcome."""
    configs: list[ActionConfig] = []
    for action in actions:
        if isinstance(action, TtsSayAction):
            text = bindings.texts.for_flow_manager(action.text)
            configs.append(
                tts_say_action(text, append_text_to_context=action.append_text_to_context)
            )
            continue
        goodbye = None if action.text is None else bindings.texts.plain(action.text)
        configs.append(conclude_action(bindings, action.outcome))
        configs.append(
            end_conversation_action(goodbye, append_text_to_context=action.append_text_to_context)
        )
    return configs
