"""DriverStatement against real PostgreSQL: the same rows SQLAlchemy would give, constants
converted by their column types, and a missing parameter refused before anything is sent."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, bindparam, insert, literal, select

from shared.db.driver_statement import DriverStatement
from shared.db.models import Base, Lead, Merchant
from shared.enums import LeadStatus

_MERCHANTS = Base.metadata.tables[Merchant.__tablename__]
_LEADS = Base.metadata.tables[Lead.__tablename__]


def test_a_statement_returns_what_sqlalchemy_returns(engine: Engine) -> None:
    statement = select(
        bindparam("id", type_=_MERCHANTS.c.id.type),
        literal(LeadStatus.QUEUED, type_=_LEADS.c.status.type),
        bindparam("n", type_=_MERCHANTS.c.rate_limit_calls.type) + 1,
    )
    driver = DriverStatement(statement)
    some_id = uuid.uuid4()
    with engine.connect() as connection:
        expected = connection.execute(statement, {"id": some_id, "n": 2}).one()
        got = driver.execute(connection, id=some_id, n=2).fetchone()
    assert got == tuple(expected) == (some_id, "QUEUED", 3)


def test_writes_join_the_connections_transaction(engine: Engine) -> None:
    merchant_id = uuid.uuid4()
    statement = DriverStatement(
        insert(_MERCHANTS)
        .values(
            id=bindparam("id", type_=_MERCHANTS.c.id.type),
            name=bindparam("name", type_=_MERCHANTS.c.name.type),
            webhook_secret="x",
            default_timezone="UTC",
        )
        .returning(_MERCHANTS.c.id)
    )
    with engine.connect() as connection:
        row = statement.execute(connection, id=merchant_id, name=uuid.uuid4().hex).fetchone()
        assert row == (merchant_id,)
        connection.rollback()
    with engine.connect() as connection:
        found = connection.scalar(select(_MERCHANTS.c.id).where(_MERCHANTS.c.id == merchant_id))
    assert found is None  # rolled back with the SQLAlchemy transaction it ran in


def test_a_missing_parameter_is_refused_by_name(engine: Engine) -> None:
    statement = DriverStatement(select(bindparam("a", type_=_MERCHANTS.c.id.type)))
    with engine.connect() as connection, pytest.raises(TypeError, match="missing parameters: a"):
        statement.execute(connection)
