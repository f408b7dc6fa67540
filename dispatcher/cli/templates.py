"""`callfleet templates`: load conversation templates (validated) and list them."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from sqlalchemy import select

from dispatcher.cli.common import CliError, boundary, cli_context
from dispatcher.merchants import merchant_by_name
from dispatcher.templates_store import InboundNumberTaken, save_template
from shared.db.models import Template
from shared.db.session import transaction

app = typer.Typer(help="Conversation templates.", no_args_is_help=True)


def read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CliError(f"{path}: no such file") from exc
    except json.JSONDecodeError as exc:
        raise CliError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno})") from exc


@app.command()
def load(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Template JSON document."),
    merchant: str = typer.Option(..., help="Merchant that owns the template."),
) -> None:
    """Validate FILE and make it the active version of its template name."""
    cli = cli_context(ctx)
    with boundary(cli), transaction(cli.sessions) as session:
        document = read_json(file)
        owner = merchant_by_name(session, merchant)
        if owner is None:
            raise CliError(f"no merchant named '{merchant}'")
        try:
            saved = save_template(session, owner.id, document)
        except InboundNumberTaken as exc:
            raise CliError(str(exc)) from exc
    typer.echo(f"template {saved.name} v{saved.version} loaded and active")


@app.command("list")
def list_templates(ctx: typer.Context, merchant: str = typer.Option(...)) -> None:
    """List a merchant's templates and versions."""
    cli = cli_context(ctx)
    with boundary(cli), cli.sessions() as session:
        owner = merchant_by_name(session, merchant)
        if owner is None:
            raise CliError(f"no merchant named '{merchant}'")
        rows = session.execute(
            select(Template.name, Template.version, Template.active)
            .where(Template.merchant_id == owner.id)
            .order_by(Template.name, Template.version)
        )
        for name, version, active in rows:
            typer.echo(f"{name}\tv{version}\t{'active' if active else ''}")
