"""`callfleet merchants`: create merchants and issue their API keys."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from sqlalchemy import select

from dispatcher.cli.common import CliError, boundary, cli_context
from dispatcher.merchants import create_merchant, issue_api_key, merchant_by_name
from dispatcher.webhooks import UrlVerdict, check_webhook_url
from shared.db.models import Merchant
from shared.db.session import transaction

app = typer.Typer(help="Merchants and their API keys.", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    name: str,
    webhook_url: str | None = typer.Option(None, help="Where outcomes are POSTed (https)."),
    timezone: str = typer.Option("UTC", help="Default IANA time zone for its leads."),
) -> None:
    """Create merchant NAME and print its API key (shown only this once)."""
    cli = cli_context(ctx)
    with boundary(cli):
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise CliError(f"'{timezone}' is not an IANA time zone") from exc
        if webhook_url is not None:
            decision = check_webhook_url(
                webhook_url, allow_insecure=cli.settings.webhook_allow_insecure
            )
            if decision.verdict is UrlVerdict.REFUSED:
                raise CliError(f"webhook URL refused: {decision.reason}")
        with transaction(cli.sessions) as session:
            if merchant_by_name(session, name) is not None:
                raise CliError(f"merchant '{name}' already exists")
            merchant = create_merchant(
                session, name, webhook_url=webhook_url, default_timezone=timezone
            )
    typer.echo(f"merchant {merchant.name} created (id {merchant.id})")
    typer.echo(f"API key (shown once, store it now): {merchant.api_key}")


@app.command("new-key")
def new_key(ctx: typer.Context, name: str) -> None:
    """Issue another API key for merchant NAME."""
    cli = cli_context(ctx)
    with boundary(cli), transaction(cli.sessions) as session:
        merchant = merchant_by_name(session, name)
        if merchant is None:
            raise CliError(f"no merchant named '{name}'")
        api_key = issue_api_key(session, merchant.id)
    typer.echo(f"API key (shown once, store it now): {api_key}")


@app.command("list")
def list_merchants(ctx: typer.Context) -> None:
    """List merchants."""
    cli = cli_context(ctx)
    with boundary(cli), cli.sessions() as session:
        for merchant in session.scalars(select(Merchant).order_by(Merchant.name)):
            typer.echo(f"{merchant.name}\t{merchant.id}\t{merchant.default_timezone}")
