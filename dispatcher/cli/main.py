"""The `callfleet` command: settings are built here, once, and handed to every command."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from dispatcher.cli import db, leads, merchants, numbers, status, templates
from dispatcher.cli.common import CliContext
from shared.settings import Settings

app = typer.Typer(
    help="callfleet: AI voice calls for merchants at fleet scale.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(merchants.app, name="merchants")
app.add_typer(numbers.app, name="numbers")
app.add_typer(templates.app, name="templates")
app.add_typer(leads.app, name="leads")
app.command("status")(status.status)


@app.callback()
def root(ctx: typer.Context) -> None:
    try:
        settings = Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        typer.echo(f"error: invalid setting {error['loc']}: {error['msg']}", err=True)
        raise typer.Exit(1) from None
    cli = CliContext(settings)
    ctx.obj = cli
    ctx.call_on_close(cli.close)


if __name__ == "__main__":
    app()
