"""How a conversation ends: the outcome is recorded, the session told, and pipecat ends the call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pipecat.flows import ActionConfig, NodeConfig

from media_worker.flows.texts import TextRenderer
from media_worker.record import CallRecord
from shared.enums import Outcome


@dataclass(frozen=True)
class ConversationEnd:
    """The conversation decided to end: `outcome`, and `transfer_to` (E.164, unmasked) when the
    session must hand the call to a person once the pipeline has ended."""

    outcome: Outcome
    transfer_to: str | None = None


OnConversationEnd = Callable[[ConversationEnd], Awaitable[None]]
"""Told once, when the conversation decides its outcome (before the goodbye is spoken).

It runs inside a pipecat function handler or action: it must not raise (pipecat would turn the
exception into an error result for the LLM) and must not block.
"""


@dataclass(frozen=True)
class FlowBindings:
    """What one call's handlers and actions are bound to."""

    record: CallRecord
    on_end: OnConversationEnd
    texts: TextRenderer

    async def conclude(self, outcome: Outcome, *, transfer_to: str | None = None) -> bool:
        """Record the conversation's outcome and tell the session; False if an earlier
        decision stands (the record keeps the first, see `CallRecord.decide_outcome`)."""
        if not self.record.decide_outcome(outcome):
            return False
        if transfer_to is not None:
            self.record.request_transfer(transfer_to)
        await self.on_end(ConversationEnd(outcome, transfer_to))
        return True


def end_conversation_action(
    text: str | None, *, append_text_to_context: bool = True
) -> ActionConfig:
    """pipecat's built-in `end_conversation`: speaks `text` (if any), then queues an `EndFrame`.

    Its text is not rendered by the FlowManager, so it takes `TextRenderer.plain` text.
    """
    action: ActionConfig = {"type": "end_conversation"}
    if text is not None:
        action["text"] = text
        action["append_text_to_context"] = append_text_to_context
    return action


def ending_node(name: str, goodbye: str | None) -> NodeConfig:
    """The node an ending function moves to: say `goodbye` and end, without asking the LLM.

    The end runs as a pre-action (pre-actions run at once; post-actions of a node that does not
    respond immediately would wait for a bot turn that never comes) and the node offers no
    functions, so nothing can be called while the goodbye plays.
    """
    return {
        "name": name,
        "task_messages": [],
        "functions": [],
        "pre_actions": [end_conversation_action(goodbye)],
        "respond_immediately": False,
    }
