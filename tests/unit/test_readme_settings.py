"""The README's configuration table names every setting the code reads, so that a setting
cannot be added without being documented."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices

from shared.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def _env_names() -> dict[str, set[str]]:
    """Each field's accepted environment variable names."""
    prefix = Settings.model_config.get("env_prefix", "")
    names: dict[str, set[str]] = {}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names[field] = {str(choice) for choice in alias.choices}
        elif isinstance(alias, str):
            names[field] = {alias}
        else:
            names[field] = {f"{prefix}{field}".upper()}
    return names


def _documented(known: set[str]) -> set[str]:
    section = (
        README.read_text(encoding="utf-8").split("## Configuration", 1)[1].split("\n## ", 1)[0]
    )
    documented: set[str] = set()
    for row in (line for line in section.splitlines() if line.startswith("|")):
        first_cell = row.split("|")[1]
        previous: str | None = None
        for name in re.findall(r"`([A-Z_][A-Z0-9_]*)`", first_cell):
            if name.startswith("_") and previous is not None:
                # `CALLFLEET_X_BASE_S` / `_CAP_S`: the suffix replaces the tail of the first.
                parts = previous.split("_")
                for cut in range(1, len(parts)):
                    candidate = "_".join(parts[:-cut]) + name
                    if candidate in known:
                        documented.add(candidate)
                        break
            else:
                documented.add(name)
                previous = name
    return documented


def test_every_setting_is_in_the_readme_table() -> None:
    names = _env_names()
    documented = _documented({n for choices in names.values() for n in choices})
    missing = sorted(field for field, choices in names.items() if not choices & documented)
    assert not missing, f"settings missing from README ## Configuration: {missing}"


def test_the_table_names_no_setting_that_does_not_exist() -> None:
    names = {n for choices in _env_names().values() for n in choices}
    documented = _documented(names)
    unknown = sorted(n for n in documented if n.startswith("CALLFLEET_") and n not in names)
    assert not unknown, f"README documents settings the code does not read: {unknown}"
