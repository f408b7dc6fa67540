"""The example templates shipped with callfleet, read as package data."""

from __future__ import annotations

import json
from importlib.resources import files


def example_names() -> list[str]:
    """The stems of the shipped example templates, sorted."""
    return sorted(
        entry.name.removesuffix(".json")
        for entry in files(__name__).iterdir()
        if entry.name.endswith(".json")
    )


def load_example(name: str) -> dict[str, object]:
    """The decoded JSON of the example template `name` (a file stem, e.g. `cod_confirmation`).

    Unknown names raise `ValueError`; a name is never used as a path.
    """
    if name not in example_names():
        raise ValueError(f"no example template '{name}'; have: {', '.join(example_names())}")
    data = json.loads(files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"example template '{name}' is not a JSON object")
    return data
