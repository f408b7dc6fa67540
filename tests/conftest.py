"""Fixtures over real PostgreSQL and Redis: a dedicated test database and Redis db,
migrated once per session and emptied after every test."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from shared.db import migrate
from shared.db.models import Base
from shared.db.session import make_engine, make_session_factory
from shared.embedded import ensure_database
from shared.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, Settings, sqlalchemy_url

# Overridable so that two test runs on one machine can keep out of each other's way.
TEST_DB = os.environ.get("CALLFLEET_TEST_DB", "callfleet_test")
TEST_REDIS_DB = int(os.environ.get("CALLFLEET_TEST_REDIS_DB", "15"))


def _test_urls() -> tuple[str, str]:
    base = make_url(sqlalchemy_url(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)))
    database_url = base.set(database=TEST_DB).render_as_string(hide_password=False)
    redis_base = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL).rsplit("/", 1)
    has_db = len(redis_base) == 2 and redis_base[1].isdigit()
    redis_url = (redis_base[0] if has_db else "/".join(redis_base)) + f"/{TEST_REDIS_DB}"
    return database_url, redis_url


@pytest.fixture(scope="session")
def settings() -> Settings:
    database_url, redis_url = _test_urls()
    return Settings(DATABASE_URL=database_url, REDIS_URL=redis_url, log_format="console")


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    url = make_url(settings.database_url)
    server = url.set(drivername="postgresql", database="postgres")
    ensure_database(server.render_as_string(hide_password=False), TEST_DB)
    engine = make_engine(settings, pool_size=5)
    with engine.begin() as connection:
        # Every session starts from an empty schema and runs the real migrations.
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    migrate.upgrade(settings.database_url)
    yield engine
    engine.dispose()


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    _truncate_all(engine)
    yield make_session_factory(engine)
    _truncate_all(engine)


@pytest.fixture
def redis_client(settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(autouse=True)
def _collect_garbage_after_each_test() -> Iterator[None]:
    """Unclosed resources warn when collected; collecting here pins the warning (an error
    under filterwarnings) on the test that leaked, not on whichever test runs next."""
    yield
    gc.collect()


@pytest.fixture
def fleet(settings: Settings, sessions: sessionmaker[Session], redis_client: redis.Redis) -> Any:
    from tests.integration.fleet import Fleet

    def make(**setup: Any) -> Fleet:
        return Fleet(settings, sessions, redis_client).setup(**setup)

    return make
