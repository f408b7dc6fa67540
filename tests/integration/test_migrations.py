"""The Alembic migrations go up and down cleanly on a real PostgreSQL database."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect, pool, text
from sqlalchemy.engine import make_url

from shared.db import migrate
from shared.db.models import Base
from shared.embedded import ensure_database
from shared.settings import Settings

MIGRATIONS_DB = "callfleet_test_migrations"


def test_upgrade_downgrade_upgrade(settings: Settings) -> None:
    url = make_url(settings.database_url)
    ensure_database(
        url.set(drivername="postgresql", database="postgres").render_as_string(False), MIGRATIONS_DB
    )
    target = url.set(database=MIGRATIONS_DB).render_as_string(hide_password=False)
    engine = create_engine(target, poolclass=pool.NullPool)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))

    expected = set(Base.metadata.tables)
    migrate.upgrade(target)
    assert expected <= set(inspect(engine).get_table_names())
    assert migrate.current(target) is not None

    migrate.downgrade(target, "base")
    assert set(inspect(engine).get_table_names()) & expected == set()

    migrate.upgrade(target)
    assert expected <= set(inspect(engine).get_table_names())
    engine.dispose()
