"""`callfleet status`: leads by status and outcome."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from dispatcher.cli.common import CliError, boundary, cli_context
from dispatcher.merchants import merchant_by_name
from shared.db.models import Lead


def status(
    ctx: typer.Context,
    merchant: str | None = typer.Option(None, help="Only this merchant's leads."),
) -> None:
    """Print a table of leads by status and outcome."""
    cli = cli_context(ctx)
    query = select(Lead.status, Lead.outcome, func.count()).group_by(Lead.status, Lead.outcome)
    with boundary(cli), cli.sessions() as session:
        if merchant is not None:
            owner = merchant_by_name(session, merchant)
            if owner is None:
                raise CliError(f"no merchant named '{merchant}'")
            query = query.where(Lead.merchant_id == owner.id)
        rows = session.execute(query.order_by(Lead.status, Lead.outcome)).all()
    table = Table(title="leads")
    table.add_column("status")
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for lead_status, outcome, count in rows:
        table.add_row(str(lead_status), str(outcome or "-"), str(count))
    table.add_row("total", "", str(sum(count for _, _, count in rows)), end_section=True)
    Console().print(table)
