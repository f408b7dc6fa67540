"""The call store's reads at a call's start, on the event loop over an asyncio engine: a
connection PostgreSQL dropped is retried once on a fresh one (the read engine does not
pre-ping), and a failure that is not a drop is raised. Without an asyncio engine the same
reads run in a worker thread."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator

import pytest
import structlog.testing
from sqlalchemy import Engine, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

from media_worker.store import CallStore
from shared.settings import Settings

APP_NAME = "callfleet-test-call-store-reads"


@pytest.fixture
async def read_engine(settings: Settings, engine: Engine) -> AsyncIterator[AsyncEngine]:
    # As the worker's read engine: no pre-ping. Named, so that its backends can be found.
    reads = create_async_engine(
        settings.database_url,
        pool_size=1,
        pool_pre_ping=False,
        connect_args={"application_name": APP_NAME},
    )
    yield reads
    await reads.dispose()


def _drop_read_connections(engine: Engine) -> int:
    with engine.connect() as connection:
        dropped = connection.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name"
            ),
            {"name": APP_NAME},
        ).scalar_one()
    return int(dropped)


async def test_a_read_on_a_dropped_connection_is_retried_on_a_fresh_one(
    sessions: sessionmaker[Session], engine: Engine, read_engine: AsyncEngine
) -> None:
    store = CallStore(sessions, read_engine=read_engine)
    unknown = uuid.uuid4()
    assert await store.recorded_sid(unknown) is None  # the pool now holds one connection
    assert _drop_read_connections(engine) == 1

    with structlog.testing.capture_logs() as logs:
        assert await store.recorded_sid(unknown) is None
        assert await store.load(unknown) is None

    assert [e["event"] for e in logs] == ["call_store_read_retried"]


async def test_a_read_that_fails_otherwise_is_not_retried(
    sessions: sessionmaker[Session], read_engine: AsyncEngine
) -> None:
    store = CallStore(sessions, read_engine=read_engine)

    def broken(session: Session, attempt_id: uuid.UUID) -> None:
        session.execute(text("SELECT * FROM no_such_table"))

    with structlog.testing.capture_logs() as logs, pytest.raises(ProgrammingError):
        await store._read(broken, uuid.uuid4())
    assert logs == []


async def test_the_reads_run_on_the_event_loop_with_an_asyncio_engine_and_in_a_thread_without(
    sessions: sessionmaker[Session], read_engine: AsyncEngine
) -> None:
    seen: list[int] = []

    def where(session: Session, attempt_id: uuid.UUID) -> None:
        session.execute(text("SELECT 1"))
        seen.append(threading.get_ident())

    await CallStore(sessions, read_engine=read_engine)._read(where, uuid.uuid4())
    await CallStore(sessions)._read(where, uuid.uuid4())

    loop_thread = threading.get_ident()
    assert [ident == loop_thread for ident in seen] == [True, False]
