"""What the scripted LLM reads from an LLM context (new words, the node's task) and says back."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema

from media_worker.providers.scripted_intents import ToolSpec

GENERIC_OPENING = "How would you like to proceed?"
REPROMPT = "Sorry, I did not catch that. Could you please say that again?"

_INSTRUCTION_ROLES = ("system", "developer")
_TURN_ENDING_ROLES = ("assistant", "tool", "function")
_LISTENER = r"(?:the )?(?:customer|patient|caller|user|person)|them"
_TELL = rf"^(?:tell|inform|remind) (?:{_LISTENER})(?: that)? (.+?)[.!]?$"
_ASK = rf"^ask (?:(?:{_LISTENER}) )?((?:whether|if|which|what|when|how) .+?)[.?]?$"
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(_TELL, re.I), "{}."),
    (re.compile(_ASK, re.I), "Could you tell me {}?"),
)
_YOU = (
    (re.compile(r"\bthe (?:customer|patient|caller|user|person)\b|\bthem\b", re.I), "you"),
    (re.compile(r"\bthey\b", re.I), "you"),
    (re.compile(r"\btheir\b", re.I), "your"),
    (re.compile(r", and that\b", re.I), ", and"),
)


def message_text(message: Any) -> str:
    """The text of a standard context message (string or text parts); '' for anything else."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        return " ".join(part for part in parts if isinstance(part, str))
    return ""


def new_user_words(messages: Sequence[Any]) -> str:
    """What the user said since the assistant last spoke or called a function ('' if nothing):
    an LLM run with words answers them, one without opens the current node."""
    said: list[str] = []
    for message in reversed(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role in _TURN_ENDING_ROLES:
            break
        if role == "user":
            said.append(message_text(message))
    return " ".join(reversed([text.strip() for text in said if text.strip()]))


def assistant_has_spoken(messages: Sequence[Any]) -> bool:
    return any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages)


def task_text(messages: Sequence[Any]) -> str:
    """The latest instruction (system/developer message) in the context: the node's task."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") in _INSTRUCTION_ROLES:
            text = message_text(message).strip()
            if text:
                return text
    return ""


def opening_line(task: str) -> str:
    """A short spoken line for entering a node, made from its task: each "Tell the customer
    that X" becomes "X." and each "Ask whether/which/... X" becomes "Could you tell me
    whether X?" (listener and they/their turned into you/your). No such sentence: a generic
    question."""
    spoken = []
    for sentence in re.split(r"(?<=[.!?])\s+", task.strip()):
        for pattern, template in _RULES:
            match = pattern.match(sentence.strip())
            if match:
                spoken.append(_capitalize(template.format(_to_listener(match.group(1)))))
                break
    return " ".join(spoken) or GENERIC_OPENING


def tool_specs(tools: Any) -> list[ToolSpec]:
    """The standard tools of a context's `ToolsSchema` (none when tools are not given)."""
    if not isinstance(tools, ToolsSchema):
        return []
    return [
        ToolSpec(
            name=schema.name,
            description=schema.description or "",
            properties=schema.properties or {},
            required=tuple(schema.required or ()),
        )
        for schema in tools.standard_tools
        if isinstance(schema, FunctionSchema)
    ]


def _to_listener(text: str) -> str:
    for pattern, replacement in _YOU:
        text = pattern.sub(replacement, text)
    return text


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]
