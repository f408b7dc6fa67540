"""What every CLI command shares: settings built once, sessions, and the error boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import typer
from celery import Celery
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.celery_factory import create_celery
from dispatcher.intake.errors import IntakeError
from shared.db.session import make_engine, make_session_factory
from shared.settings import Settings
from shared.templates import TemplateInvalid


class CliError(Exception):
    """A failure the operator can act on; the boundary prints it as one line, exit 1."""


@dataclass
class CliContext:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings, pool_size=2)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    @cached_property
    def tasks(self) -> Celery:
        """Publishes to the fleet, so imported leads that are due dispatch at once."""
        return create_celery(self.settings)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()

    def safe_database_url(self) -> str:
        return make_url(self.settings.database_url).render_as_string(hide_password=True)


def cli_context(ctx: typer.Context) -> CliContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliContext)
    return obj


@contextmanager
def boundary(cli: CliContext) -> Iterator[None]:
    """Turn expected failures into one readable line on stderr and exit status 1."""
    try:
        with _translated(cli):
            yield
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@contextmanager
def _translated(cli: CliContext) -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        raise CliError(
            f"cannot reach the database at {cli.safe_database_url()} "
            "(start it with `make services`, or set DATABASE_URL)"
        ) from exc
    except TemplateInvalid as exc:
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise CliError(f"template is invalid: {len(exc.problems)} problem(s) listed above") from exc
    except IntakeError as exc:
        raise CliError(exc.message) from exc
    except IntegrityError as exc:
        detail = str(exc.orig).splitlines()[0] if exc.orig else "constraint violated"
        raise CliError(f"rejected by the database: {detail}") from exc
