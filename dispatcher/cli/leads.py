"""`callfleet leads import`: bulk intake from CSV or JSONL, all rows checked before any write."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from dispatcher.cli.common import CliContext, CliError, boundary, cli_context
from dispatcher.intake.announce import announce_due
from dispatcher.intake.errors import Problem
from dispatcher.intake.files import LeadFile, LeadFileError, read_lead_file, to_request
from dispatcher.intake.schemas import LeadRequest
from dispatcher.intake.store import active_templates, ingest
from dispatcher.intake.validate import IntakeLimits, TemplateRef, validate_lead
from dispatcher.merchants import merchant_by_name
from shared.db.session import transaction

app = typer.Typer(help="Leads: bulk import.", no_args_is_help=True)

SHOWN_PROBLEMS = 50


def _check_rows(
    lead_file: LeadFile, templates: dict[str, TemplateRef], limits: IntakeLimits
) -> tuple[list[tuple[LeadRequest, str]], list[Problem]]:
    definitions = {name: ref.definition for name, ref in templates.items()}
    now = datetime.now(UTC)
    good: list[tuple[LeadRequest, str]] = []
    problems: list[Problem] = []
    for row in lead_file.rows:
        request = to_request(row, definitions)
        if isinstance(request, list):
            problems.extend(request)
            continue
        key = request.idempotency_key or lead_file.default_key(row.line)
        result = validate_lead(request, templates, limits, now, key)
        if isinstance(result, list):
            problems.extend(Problem(p.field, p.code, p.message, row.line) for p in result)
        else:
            good.append((request, key))
    return good, problems


def _report(problems: list[Problem], errors_out: Path | None) -> None:
    for problem in problems[:SHOWN_PROBLEMS]:
        typer.echo(f"  line {problem.row}: {problem.field}: {problem.message}", err=True)
    if len(problems) > SHOWN_PROBLEMS:
        typer.echo(f"  ... and {len(problems) - SHOWN_PROBLEMS} more", err=True)
    if errors_out is not None:
        with errors_out.open("w", encoding="utf-8") as out:
            for problem in problems:
                out.write(json.dumps(problem.as_dict()) + "\n")
        typer.echo(f"  every problem written to {errors_out}", err=True)


def _write(
    cli: CliContext, merchant_id: uuid.UUID, rows: list[tuple[LeadRequest, str]], chunk: int
) -> tuple[int, int]:
    created = existing = 0
    limits = IntakeLimits.from_settings(cli.settings)
    with Progress(
        TextColumn("importing"), BarColumn(), MofNCompleteColumn(), transient=False
    ) as progress:
        bar = progress.add_task("import", total=len(rows))
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            now = datetime.now(UTC)
            with transaction(cli.sessions) as session:
                results = ingest(
                    session,
                    merchant_id,
                    [request for request, _ in part],
                    limits,
                    now,
                    [key for _, key in part],
                )
            announce_due(cli.tasks, results, now)
            created += sum(1 for r in results if r.created)
            existing += sum(1 for r in results if not r.created)
            progress.advance(bar, len(part))
    return created, existing


@app.command("import")
def import_leads(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A .csv or .jsonl file of leads."),
    merchant: str = typer.Option(..., help="Merchant the leads belong to."),
    chunk: int = typer.Option(500, min=1, max=1000, help="Leads written per transaction."),
    errors_out: Path | None = typer.Option(None, "--errors", help="Write every problem (JSONL)."),
) -> None:
    """Import leads. Every row is validated first; if any row is invalid nothing is written."""
    cli = cli_context(ctx)
    with boundary(cli):
        try:
            lead_file = read_lead_file(file)
        except FileNotFoundError as exc:
            raise CliError(f"{file}: no such file") from exc
        except LeadFileError as exc:
            raise CliError(str(exc)) from exc
        if not lead_file.rows:
            raise CliError(f"{file}: no leads in the file")
        with cli.sessions() as session:
            owner = merchant_by_name(session, merchant)
            if owner is None:
                raise CliError(f"no merchant named '{merchant}'")
            templates = active_templates(session, owner.id)
        good, problems = _check_rows(lead_file, templates, IntakeLimits.from_settings(cli.settings))
        if problems:
            _report(problems, errors_out)
            bad_lines = len({p.row for p in problems})
            raise CliError(
                f"{bad_lines} of {len(lead_file.rows)} rows are invalid; nothing was imported"
            )
        created, existing = _write(cli, owner.id, good, chunk)
    typer.echo(f"imported {len(good)} leads: {created} new, {existing} already present")
