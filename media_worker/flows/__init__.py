"""Conversation templates as pipecat Flows: node configs, built-in handlers, voicemail policy.

Public API: `build_flow(definition, payload, *, record, on_end) -> FlowPlan`, whose
`initial_node()` starts a `FlowManager` and whose handlers move between nodes, record the call
on the `CallRecord` and end it; `voicemail_plan(definition, values)`; `ConversationEnd`, what
`on_end` is told.
"""

from media_worker.flows.ending import ConversationEnd, OnConversationEnd
from media_worker.flows.plan import FlowPlan, build_flow
from media_worker.flows.voicemail import voicemail_plan

__all__ = ["ConversationEnd", "FlowPlan", "OnConversationEnd", "build_flow", "voicemail_plan"]
