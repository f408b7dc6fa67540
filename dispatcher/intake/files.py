"""Reads lead files (CSV or JSONL) into lead requests, keeping each row's line number."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatcher.intake.errors import Problem
from dispatcher.intake.schemas import LeadRequest, parse_row
from shared.templates import TemplateDefinition

CSV_COLUMNS = frozenset(
    {"phone", "template", "idempotency_key", "not_before", "deadline", "timezone", "max_attempts"}
)
PAYLOAD_PREFIX = "payload."


class LeadFileError(ValueError):
    """The file as a whole cannot be read (unknown format, bad header, bad encoding)."""


@dataclass(frozen=True)
class RawRow:
    line: int
    fields: dict[str, Any]
    from_csv: bool


@dataclass(frozen=True)
class LeadFile:
    digest: str
    rows: list[RawRow]

    def default_key(self, line: int) -> str:
        """Rows without their own key get one derived from the file, so re-running an
        interrupted import of the same file creates nothing twice."""
        return f"file:{self.digest[:20]}:{line}"


def read_lead_file(path: Path) -> LeadFile:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LeadFileError(f"{path}: not UTF-8 text") from exc
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(text, path)
    elif suffix in (".jsonl", ".ndjson"):
        rows = _jsonl_rows(text)
    else:
        raise LeadFileError(f"{path}: use a .csv or .jsonl file")
    return LeadFile(hashlib.sha256(data).hexdigest(), rows)


def _csv_rows(text: str, path: Path) -> list[RawRow]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in CSV_COLUMNS and not c.startswith(PAYLOAD_PREFIX)]
    unknown += [c for c in header if c == "payload"]
    if unknown or "phone" not in header or "template" not in header:
        raise LeadFileError(
            f"{path}: CSV header needs phone and template, optional {sorted(CSV_COLUMNS)} "
            f"and payload.<name> columns; unexpected: {unknown or 'none'}"
        )
    rows = []
    for record in reader:
        fields = {k: v for k, v in record.items() if k is not None and v not in (None, "")}
        rows.append(RawRow(reader.line_num, fields, from_csv=True))
    return rows


def _jsonl_rows(text: str) -> list[RawRow]:
    rows = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            fields = json.loads(line)
        except json.JSONDecodeError:
            fields = {"__malformed__": line}
        rows.append(
            RawRow(line_no, fields if isinstance(fields, dict) else {"__malformed__": line}, False)
        )
    return rows


def _coerce_csv_payload(
    fields: Mapping[str, Any], definition: TemplateDefinition | None
) -> dict[str, Any]:
    """CSV cells are text: read typed variables as JSON scalars (`42`, `true`), so the
    template's type checks apply as they would to a JSON request."""
    payload: dict[str, Any] = {}
    for column, cell in fields.items():
        if not column.startswith(PAYLOAD_PREFIX):
            continue
        name = column[len(PAYLOAD_PREFIX) :]
        spec = definition.variables.get(name) if definition else None
        if spec is not None and spec.type in ("integer", "number", "boolean"):
            try:
                payload[name] = json.loads(cell)
                continue
            except json.JSONDecodeError:
                pass
        payload[name] = cell
    return payload


def to_request(
    row: RawRow, definitions: Mapping[str, TemplateDefinition]
) -> LeadRequest | list[Problem]:
    if "__malformed__" in row.fields:
        return [Problem("line", "malformed_json", "not a JSON object", row.line)]
    fields = dict(row.fields)
    if row.from_csv:
        definition = definitions.get(str(fields.get("template", "")))
        payload = _coerce_csv_payload(fields, definition)
        fields = {k: v for k, v in fields.items() if not k.startswith(PAYLOAD_PREFIX)}
        fields["payload"] = payload
    return parse_row(fields, row.line)
