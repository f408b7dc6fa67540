"""`parse_template`: raw template JSON to a `TemplateDefinition`, or every problem at once."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shared.templates.errors import TemplateInvalid, join_path
from shared.templates.schema import TemplateDefinition, TemplateFlow

# The tags pydantic puts in an error's location inside a tagged union (`effect.end_call.outcome`);
# they are dropped so that paths name JSON keys only (`effect.outcome`).
_EFFECT_TAGS = frozenset({"transition", "end_call", "transfer"})
_ACTION_TAGS = frozenset({"tts_say", "end_conversation"})
_ACTION_LISTS = frozenset({"pre_actions", "post_actions"})

_MESSAGE_PREFIXES = ("Value error, ", "Assertion failed, ")


def parse_template(data: object) -> TemplateDefinition:
    """Validate JSON-decoded `data` as a template; raise `TemplateInvalid` listing every problem.

    Field problems are reported together (pydantic validates every field). The whole-flow checks
    (unknown nodes, variables in text, ...) need valid flow fields; when only sections outside
    the flow are broken (voice, retry policy, calling window, ...), the flow is validated alone
    so that its problems are reported in the same exception.
    """
    try:
        return TemplateDefinition.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = _problem_lines(errors)
        broken = {error["loc"][0] for error in errors if error["loc"]}
        whole_document_failed = any(not error["loc"] for error in errors)
        if not whole_document_failed and not broken & TemplateFlow.model_fields.keys():
            problems.extend(_flow_only_problems(data))
        raise TemplateInvalid(_unique(problems)) from exc


def _flow_only_problems(data: object) -> list[str]:
    try:
        TemplateFlow.model_validate(data)
    except ValidationError as exc:
        return _problem_lines(exc.errors())
    return []


def _problem_lines(errors: Sequence[ErrorDetails]) -> list[str]:
    lines: list[str] = []
    for error in errors:
        path = format_path(error["loc"])
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, TemplateInvalid):
            lines.extend(join_path(path, problem) for problem in cause.problems)
        else:
            lines.append(f"{path or '$'}: {_message(error)}")
    return lines


def format_path(loc: Sequence[int | str]) -> str:
    """`("nodes", "greet", "functions", 0, "effect", "end_call", "outcome")` ->
    `"nodes.greet.functions[0].effect.outcome"` (union tags and `[key]` markers dropped)."""
    path = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]" or _is_union_tag(loc, index):
            continue
        else:
            path += f".{part}" if path else part
    return path


def _is_union_tag(loc: Sequence[int | str], index: int) -> bool:
    part = loc[index]
    before = loc[index - 1] if index >= 1 else None
    if part in _EFFECT_TAGS and before == "effect":
        return True
    return (
        part in _ACTION_TAGS
        and isinstance(before, int)
        and index >= 2
        and loc[index - 2] in _ACTION_LISTS
    )


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "expected a JSON object"
    message = error["msg"]
    for prefix in _MESSAGE_PREFIXES:
        message = message.removeprefix(prefix)
    if kind in ("literal_error", "enum") and isinstance(error.get("input"), str | int):
        message += f" (got {error['input']!r})"
    return message


def _unique(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))
