"""Templates made ready for inbound calls, which bring no payload: shared by the tests."""

from __future__ import annotations

from typing import Any

INBOUND_DEFAULTS = {
    "string": "there", "integer": 0, "number": 0, "boolean": False,
    "date": "2026-12-01", "datetime": "2026-12-01T10:00:00+05:30",
}  # fmt: skip


def inbound_ready(document: dict[str, Any]) -> dict[str, Any]:
    """Every variable optional with a default: an inbound call brings no payload."""
    variables = document["variables"]
    assert isinstance(variables, dict)
    for spec in variables.values():
        spec["required"] = False
        spec.setdefault("default", INBOUND_DEFAULTS[spec["type"]])
    return document
