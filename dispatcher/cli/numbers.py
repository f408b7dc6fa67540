"""`callfleet numbers`: outbound numbers and their channel counts."""

from __future__ import annotations

import uuid

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.cli.common import CliError, boundary, cli_context
from dispatcher.merchants import merchant_by_name
from dispatcher.templates_store import active_definitions, payload_needed, unrenderable_inbound
from shared.db.models import PhoneNumber
from shared.db.session import transaction
from shared.enums import NumberProvider
from shared.phones import InvalidPhone, mask_phone, to_e164

app = typer.Typer(help="Outbound phone numbers.", no_args_is_help=True)


@app.command()
def add(
    ctx: typer.Context,
    e164: str = typer.Argument(..., help="The number in E.164, e.g. +14155550100."),
    provider: NumberProvider = typer.Option(NumberProvider.TWILIO),
    channels: int = typer.Option(..., min=1, help="Concurrent calls the number can carry."),
    merchant: str | None = typer.Option(None, help="Owner; omit for the shared pool."),
    inbound_template: str | None = typer.Option(
        None, help="The owner's template that answers calls to this number."
    ),
) -> None:
    """Add a number to a merchant's pool, or to the shared pool."""
    cli = cli_context(ctx)
    with boundary(cli), transaction(cli.sessions) as session:
        try:
            number = to_e164(e164)
        except InvalidPhone as exc:
            raise CliError(f"{e164!r}: {exc}") from exc
        owner = None
        if inbound_template is not None and merchant is None:
            raise CliError("--inbound-template needs --merchant: the template is the owner's")
        if merchant is not None:
            found = merchant_by_name(session, merchant)
            if found is None:
                raise CliError(f"no merchant named '{merchant}'")
            owner = found.id
        if owner is not None and inbound_template is not None:
            _check_inbound_template(session, owner, inbound_template)
        if session.scalar(select(PhoneNumber.id).where(PhoneNumber.e164 == number)):
            raise CliError(f"number {mask_phone(number)} is already registered")
        session.add(
            PhoneNumber(
                e164=number,
                provider=provider,
                max_channels=channels,
                merchant_id=owner,
                inbound_template=inbound_template,
            )
        )
    pool = f"merchant {merchant}" if merchant else "the shared pool"
    typer.echo(f"number {number} added to {pool} with {channels} channel(s)")


def _check_inbound_template(session: Session, merchant_id: uuid.UUID, name: str) -> None:
    """The template must exist, active, and render with no payload: inbound calls bring none."""
    definition = active_definitions(session, merchant_id, [name]).get(name)
    if definition is None:
        raise CliError(f"--inbound-template: the merchant has no active template named '{name}'")
    needed = payload_needed(definition)
    if needed:
        raise CliError(f"--inbound-template: {unrenderable_inbound(name, needed)}")
