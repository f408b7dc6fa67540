"""`callfleet db`: schema migrations."""

from __future__ import annotations

import typer

from dispatcher.cli.common import boundary, cli_context
from shared.db import migrate

app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context, revision: str = typer.Argument("head")) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    cli = cli_context(ctx)
    with boundary(cli):
        migrate.upgrade(cli.settings.database_url, revision)
        typer.echo(f"database at revision {migrate.current(cli.settings.database_url)}")


@app.command()
def downgrade(ctx: typer.Context, revision: str = typer.Argument(...)) -> None:
    """Migrate the database down to REVISION (`base` removes every table)."""
    cli = cli_context(ctx)
    with boundary(cli):
        migrate.downgrade(cli.settings.database_url, revision)
        typer.echo(f"database at revision {migrate.current(cli.settings.database_url) or 'base'}")


@app.command()
def current(ctx: typer.Context) -> None:
    """Print the database's current revision."""
    cli = cli_context(ctx)
    with boundary(cli):
        typer.echo(migrate.current(cli.settings.database_url) or "base")
