"""Conversation templates: the schema merchants' templates are validated against when saved.

Public API: `parse_template` (raw JSON -> `TemplateDefinition`, or `TemplateInvalid` listing
every problem), `check_payload` / `render_variables` / `render_text` for a lead's variables, and
`load_example` for the shipped examples; `agent_problems` for an orchestrator's agents.
"""

from shared.templates.checks import rendered_texts
from shared.templates.errors import TemplateInvalid
from shared.templates.examples import example_names, load_example
from shared.templates.fields import BUSINESS_OUTCOMES, RETRYABLE_OUTCOMES
from shared.templates.orchestrator import (
    MAX_ROUTES,
    ROUTE_FUNCTION,
    AgentSpec,
    ContextCarry,
    OrchestratorSpec,
    agent_problems,
)
from shared.templates.parsing import parse_template
from shared.templates.policies import (
    CallingWindow,
    RetryPolicy,
    VoiceChoice,
    VoicemailPolicy,
    VoiceSpec,
    parse_hhmm,
)
from shared.templates.schema import (
    ContextStrategySpec,
    EndCallEffect,
    EndConversationAction,
    FunctionProperty,
    FunctionSpec,
    Message,
    NodeSpec,
    TemplateDefinition,
    TemplateFlow,
    TransferEffect,
    TransitionEffect,
    TtsSayAction,
    VariableSpec,
)
from shared.templates.variables import (
    PayloadInvalid,
    PayloadProblem,
    UnknownVariable,
    check_payload,
    escape_placeholders,
    render_text,
    render_variables,
)

__all__ = [
    "BUSINESS_OUTCOMES",
    "MAX_ROUTES",
    "RETRYABLE_OUTCOMES",
    "ROUTE_FUNCTION",
    "AgentSpec",
    "CallingWindow",
    "ContextCarry",
    "ContextStrategySpec",
    "EndCallEffect",
    "EndConversationAction",
    "FunctionProperty",
    "FunctionSpec",
    "Message",
    "NodeSpec",
    "OrchestratorSpec",
    "PayloadInvalid",
    "PayloadProblem",
    "RetryPolicy",
    "TemplateDefinition",
    "TemplateFlow",
    "TemplateInvalid",
    "TransferEffect",
    "TransitionEffect",
    "TtsSayAction",
    "UnknownVariable",
    "VariableSpec",
    "VoiceChoice",
    "VoiceSpec",
    "VoicemailPolicy",
    "agent_problems",
    "check_payload",
    "escape_placeholders",
    "example_names",
    "load_example",
    "parse_hhmm",
    "parse_template",
    "render_text",
    "render_variables",
    "rendered_texts",
]
