"""Arguments for a scripted function call, derived from the customer's words and the schema."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from media_worker.providers.scripted_intents import Intent, ToolSpec, normalize

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_STOPWORDS = frozenset({"a", "an", "the", "by", "to", "too", "of", "in", "on", "at", "for", "or"})
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_MAX_TEXT_CHARS = 200


def build_arguments(tool: ToolSpec, words: str, intent: Intent, today: date) -> dict[str, Any]:
    """Values for every required property, and for optional ones the words settle.

    - `enum`: the value sharing most words with what was said, else the first (required
      only);
    - string: for a property named or described as a date, the `YYYY-MM-DD` the words name
      (today, tomorrow, day after tomorrow, next week, a weekday, `kal`), else the words
      (required only); any other string: the customer's words;
    - integer/number: the first number said, else 0 (required only);
    - boolean: the intent's `affirmative` (required only).
    """
    arguments: dict[str, Any] = {}
    for name, spec in tool.properties.items():
        value = _value(name, spec, words, intent, today, required=name in tool.required)
        if value is not None:
            arguments[name] = value
    return arguments


def _value(
    name: str,
    spec: Mapping[str, Any],
    words: str,
    intent: Intent,
    today: date,
    *,
    required: bool,
) -> Any:
    enum = spec.get("enum")
    kind = spec.get("type")
    if enum:
        return _enum_value(list(enum), words, required=required)
    if kind == "boolean":
        return intent.affirmative if required else None
    if kind in ("integer", "number"):
        match = _NUMBER.search(words)
        if match is None:
            return 0 if required else None
        number = float(match.group())
        return int(number) if kind == "integer" else number
    if _is_date(name, spec):
        spoken = spoken_date(words, today)
        if spoken is not None:
            return spoken.isoformat()
        if not required:
            return None
    return words.strip()[:_MAX_TEXT_CHARS]


def _enum_value(enum: list[Any], words: str, *, required: bool) -> Any:
    said = set(normalize(words).split()) - _STOPWORDS
    best, best_overlap = None, 0
    for value in enum:
        overlap = len(set(normalize(str(value).replace("_", " ")).split()) - _STOPWORDS & said)
        if overlap > best_overlap:
            best, best_overlap = value, overlap
    if best is not None:
        return best
    return enum[0] if required else None


def _is_date(name: str, spec: Mapping[str, Any]) -> bool:
    description = str(spec.get("description", "")).lower()
    return "date" in name.lower() or "yyyy-mm-dd" in description or spec.get("format") == "date"


def spoken_date(words: str, today: date) -> date | None:
    """The day the words name, relative to `today`, or None."""
    padded = normalize(words)
    if " day after tomorrow " in padded:
        return today + timedelta(days=2)
    if " tomorrow " in padded or " kal " in padded:
        return today + timedelta(days=1)
    if " today " in padded:
        return today
    if " next week " in padded:
        return today + timedelta(days=7)
    for index, weekday in enumerate(_WEEKDAYS):
        if f" {weekday} " in padded:
            return today + timedelta(days=(index - today.weekday() - 1) % 7 + 1)
    return None
