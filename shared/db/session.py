"""Engine and session factory, built from settings once per process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from shared.settings import Settings


def make_engine(settings: Settings, *, pool_size: int = 10, pre_ping: bool = True) -> Engine:
    """`pre_ping=False` saves a round trip per checkout for callers that handle a dead
    connection themselves (admission retries its first, read-only statement)."""
    return create_engine(
        settings.database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
    )


def make_async_engine(
    settings: Settings, *, pool_size: int, max_overflow: int | None = None, pre_ping: bool = True
) -> AsyncEngine:
    """The same database for asyncio callers (psycopg's async connections). `max_overflow`
    (default `pool_size`): connections opened beyond the pool when it is empty, and closed
    when handed back; with 0, a checkout waits for a pooled one instead."""
    return create_async_engine(
        settings.database_url,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_pre_ping=pre_ping,
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session
