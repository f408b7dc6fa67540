"""Template variables: the `{{ name }}` placeholder grammar, payload checking and rendering."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from shared.templates.schema import TemplateDefinition

VariableType = Literal["string", "integer", "number", "boolean", "date", "datetime"]

# The grammar of pipecat.flows' FlowManager (`pipecat/flows/manager.py`, `_PLACEHOLDER`), so that
# a text means the same thing to both renderers: `{{name}}` or `{{ name }}`; a leading backslash
# (`\{{ name }}`) stands for the literal `{{ name }}`. Dotted paths are matched only so that they
# can be reported: template variables are flat.
PLACEHOLDER = re.compile(
    r"(\\?)\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}"
)
_UNESCAPED_OPEN = re.compile(r"(?<!\\)\{\{")


class UnknownVariable(KeyError):
    """`render_text` met a placeholder whose name has no value."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no value for template variable '{self.name}'"


@dataclass(frozen=True)
class PayloadProblem:
    """One reason a lead payload does not fit a template, e.g. `payload.amount`."""

    field: str
    message: str


class PayloadInvalid(ValueError):
    """A payload that `check_payload` rejects was given to `render_variables`."""

    def __init__(self, problems: list[PayloadProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{p.field}: {p.message}" for p in problems))


# --- the placeholder grammar -------------------------------------------------------------------


def placeholder_names(text: str) -> list[str]:
    """The names `text` asks to be rendered, in order, once each (escaped ones excluded)."""
    names: list[str] = []
    for match in PLACEHOLDER.finditer(text):
        if not match.group(1) and match.group(2) not in names:
            names.append(match.group(2))
    return names


def has_malformed_placeholder(text: str) -> bool:
    """Whether `text` opens `{{` that is neither a placeholder nor escaped (`{{ first name }}`).

    Such text would reach the caller or the LLM with its braces; it is almost always a typo.
    """
    return _UNESCAPED_OPEN.search(PLACEHOLDER.sub("", text)) is not None


def render_text(text: str, values: Mapping[str, str]) -> str:
    """Substitute every `{{ name }}` in `text` with `values[name]`, in a single pass.

    A substituted value is never scanned again, so a value holding `{{ other }}` appears
    literally. `\\{{ name }}` renders as the literal `{{ name }}`. A name without a value raises
    `UnknownVariable`.
    """

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(0)[1:]
        name = match.group(2)
        if name not in values:
            raise UnknownVariable(name)
        return values[name]

    return PLACEHOLDER.sub(substitute, text)


def escape_placeholders(text: str) -> str:
    """Make rendered text inert for a second `{{ }}` renderer with the same grammar.

    pipecat's FlowManager renders `{{ key }}` from its state in `role_message`, task message
    content and `tts_say` text each time it enters a node. Text already rendered by
    `render_text` must pass through that unchanged, so every placeholder-shaped run (escaped or
    not) gains one backslash: `render_text(escape_placeholders(t), {}) == t` for any `t`.
    """
    return PLACEHOLDER.sub(lambda match: "\\" + match.group(0), text)


# --- values ------------------------------------------------------------------------------------


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _check_string(value: object) -> str | None:
    return None if isinstance(value, str) else f"expected a string, got {_json_type(value)}"


def _check_integer(value: object) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return None
    return f"expected an integer, got {_json_type(value)}"


def _check_number(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {_json_type(value)}"
    return None if math.isfinite(value) else "expected a finite number"


def _check_boolean(value: object) -> str | None:
    return None if isinstance(value, bool) else f"expected a boolean, got {_json_type(value)}"


def _check_date(value: object) -> str | None:
    if not isinstance(value, str):
        return f"expected an ISO 8601 date string (YYYY-MM-DD), got {_json_type(value)}"
    try:
        date.fromisoformat(value)
    except ValueError:
        return "expected an ISO 8601 date (YYYY-MM-DD); the string does not parse"
    return None


def _check_datetime(value: object) -> str | None:
    if not isinstance(value, str):
        return f"expected an ISO 8601 datetime string, got {_json_type(value)}"
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return "expected an ISO 8601 datetime (YYYY-MM-DDTHH:MM[:SS][+HH:MM]); it does not parse"
    return None


_CHECKS: dict[VariableType, Callable[[object], str | None]] = {
    "string": _check_string,
    "integer": _check_integer,
    "number": _check_number,
    "boolean": _check_boolean,
    "date": _check_date,
    "datetime": _check_datetime,
}


def value_problem(expected: VariableType, value: object) -> str | None:
    """Why `value` (JSON-decoded) is not a valid `expected`, or None when it is.

    A bool is not an integer or a number; an integer is a number; dates and datetimes are ISO
    8601 strings that parse. Messages never quote the value: payloads carry personal data.
    """
    return _CHECKS[expected](value)


def format_value(expected: VariableType, value: object) -> str:
    """The text a checked value renders as: booleans `true`/`false`, whole floats without `.0`,
    dates and datetimes in canonical ISO 8601."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if expected == "date" and isinstance(value, str):
        return date.fromisoformat(value).isoformat()
    if expected == "datetime" and isinstance(value, str):
        return datetime.fromisoformat(value).isoformat()
    return str(value)


# --- payloads ----------------------------------------------------------------------------------


def check_payload(
    definition: TemplateDefinition, payload: Mapping[str, object]
) -> list[PayloadProblem]:
    """Every way `payload` fails the template's variables; [] when it fits.

    A required variable must be present and not null (a default makes a variable optional);
    present values must have the declared type. Keys the template does not declare are allowed:
    merchants send whole orders.
    """
    problems: list[PayloadProblem] = []
    for name, spec in definition.variables.items():
        value = payload.get(name)
        if value is None:
            if spec.required:
                problems.append(PayloadProblem(f"payload.{name}", "required variable is missing"))
            continue
        message = value_problem(spec.type, value)
        if message is not None:
            problems.append(PayloadProblem(f"payload.{name}", message))
    return problems


def render_variables(
    definition: TemplateDefinition, payload: Mapping[str, object]
) -> dict[str, str]:
    """The text to substitute for each non-secret variable, defaults applied.

    Secret variables are left out, so no rendering can ever reach them. An optional variable
    with neither a value nor a default renders as "". Raises `PayloadInvalid` when
    `check_payload` finds problems.
    """
    problems = check_payload(definition, payload)
    if problems:
        raise PayloadInvalid(problems)
    values: dict[str, str] = {}
    for name, spec in definition.variables.items():
        if spec.secret:
            continue
        value = payload.get(name)
        if value is None:
            value = spec.default
        values[name] = "" if value is None else format_value(spec.type, value)
    return values
