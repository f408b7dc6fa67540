"""The scripted LLM's keyword table and the pure rule that picks a tool for the customer's words."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Intent:
    """A kind of answer: `phrases` that reveal it in the customer's words (whole words or
    phrases, case-insensitive) and `tool_hints` that reveal a tool serving it (word prefixes,
    searched in the tool's name with `_` as spaces, its description and its enum values).

    `implies` names intents that hold too when this one is heard but no tool serves it (an
    answer about the order also tells who is on the line); `affirmative` is the value given
    to a required boolean argument.
    """

    name: str
    phrases: tuple[str, ...]
    tool_hints: tuple[str, ...]
    implies: tuple[str, ...] = ()
    affirmative: bool = False


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# In priority order: the first intent heard that some offered tool serves wins.
DEFAULT_INTENTS: tuple[Intent, ...] = (
    Intent(
        "wrong_person",
        (
            "wrong number",
            "wrong person",
            "not me",
            "nobody by that name",
            "no one by that name",
            "don't know",
            "do not know",
            "who is this",
            "never ordered",
            "did not order",
            "didn't order",
            "galat number",
        ),
        ("wrong", "not the customer", "unknown person"),
    ),
    Intent(
        "human",
        (
            "support",
            "customer care",
            "real person",
            "a human",
            "human",
            "agent",
            "representative",
            "talk to someone",
            "speak to someone",
            "manager",
        ),
        ("support", "front desk", "transfer", "human", "agent", "representative", "operator"),
    ),
    Intent(
        "callback",
        (
            "call me back",
            "call back",
            "call me later",
            "call later",
            "callback",
            "busy",
            "not a good time",
            "baad mein",
        ),
        ("callback", "call back", "called back", "call later"),
    ),
    Intent(
        "cancel",
        (
            "cancel",
            "don't want",
            "do not want",
            "not interested",
            "no longer want",
            "not needed",
            "mat bhejo",
        ),
        ("cancel", "decline", "reject"),
        implies=("identity",),
    ),
    Intent(
        "reschedule",
        (
            "tomorrow",
            "day after",
            "another day",
            "different day",
            "other day",
            "another date",
            "different date",
            "reschedule",
            "next week",
            "another time",
            "different time",
            "not today",
            "kal",
            *_WEEKDAYS,
        ),
        ("reschedul", "date", "slot", "another day", "different day", "postpone"),
        implies=("identity",),
    ),
    # What the call is about, heard by an orchestrator: served by its `route_to_agent`, whose
    # agent argument is then the enum value sharing most words with what was said.
    Intent(
        "route",
        (
            "about my",
            "about the",
            "about an",
            "about a",
            "regarding",
            "calling about",
            "question about",
            "help with",
            "my order",
            "my delivery",
            "my appointment",
        ),
        ("route", "hand the call", "hand over"),
    ),
    Intent(
        "decline",
        ("no", "nope", "nahi", "nahin", "not really"),
        ("cancel", "decline", "reject", "wrong", "not the customer"),
    ),
    Intent(
        "confirm",
        (
            "yes",
            "yeah",
            "yep",
            "yup",
            "haan",
            "haa",
            "han",
            "hanji",
            "haan ji",
            "sure",
            "correct",
            "that's right",
            "that is right",
            "confirm",
            "go ahead",
            "okay",
            "ok",
            "alright",
            "this is me",
            "that's me",
            "it's me",
            "speaking",
            "of course",
            "definitely",
            "i will",
            "theek hai",
            "thik hai",
            "accha",
            "works",
        ),
        ("confirm", "yes", "accept", "proceed", "attend"),
        implies=("identity",),
        affirmative=True,
    ),
    Intent(
        "identity",
        (),
        ("identity", "verif", "right person", "is the customer", "speaking with"),
        affirmative=True,
    ),
)


@dataclass(frozen=True)
class ToolSpec:
    """What the scripted LLM reads of a tool: pipecat's `FunctionSchema` fields."""

    name: str
    description: str = ""
    properties: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    required: Sequence[str] = ()


@dataclass(frozen=True)
class ToolChoice:
    tool: ToolSpec
    intent: Intent


def normalize(text: str) -> str:
    """Lower case, apostrophes kept, other punctuation as spaces, padded with one space."""
    text = text.lower().replace("\u2019", "'")
    return " " + " ".join(re.sub(r"[^a-z0-9']+", " ", text).split()) + " "


def heard_intents(words: str, intents: Sequence[Intent]) -> list[Intent]:
    """The intents whose phrases occur in `words`, in table order, each followed by what it
    implies (once)."""
    padded = normalize(words)
    by_name = {intent.name: intent for intent in intents}
    heard: list[Intent] = []
    for intent in intents:
        if any(f" {phrase} " in padded for phrase in intent.phrases):
            for candidate in (intent, *(by_name[name] for name in intent.implies)):
                if candidate not in heard:
                    heard.append(candidate)
    return heard


def choose_tool(
    words: str, tools: Sequence[ToolSpec], intents: Sequence[Intent]
) -> ToolChoice | None:
    """The offered tool that serves the first intent heard in `words`, or None.

    Among tools serving the same intent the one with most hints wins (a hint in the name
    counts twice); a tie goes to the tool offered first.
    """
    for intent in heard_intents(words, intents):
        best: tuple[int, int] | None = None
        for index, tool in enumerate(tools):
            score = _hint_score(intent, tool)
            if score and (best is None or score > best[0]):
                best = (score, index)
        if best is not None:
            return ToolChoice(tool=tools[best[1]], intent=intent)
    return None


def _hint_score(intent: Intent, tool: ToolSpec) -> int:
    name = normalize(tool.name.replace("_", " "))
    enums = [
        str(value).replace("_", " ")
        for spec in tool.properties.values()
        for value in (spec.get("enum") or [])
    ]
    rest = normalize(" ".join([tool.description, *enums]))
    return sum(2 * (f" {hint}" in name) + (f" {hint}" in rest) for hint in intent.tool_hints)
