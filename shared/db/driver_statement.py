"""SQLAlchemy Core statements compiled once and run straight on the psycopg connection, for the
few statements on the dispatch hot path: there SQLAlchemy's per-execution work (parameter
processing, result metadata) costs more CPU than PostgreSQL spends answering."""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import Connection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement


class DriverStatement:
    """One statement, compiled for the connection's dialect on first use. Its constant
    parameters (enum members, JSON literals, flags) are converted once by their SQLAlchemy
    types; the values passed to `execute` must already be ones psycopg adapts natively
    (str, int, uuid.UUID, datetime)."""

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._compiled: tuple[str, dict[str, Any], frozenset[str]] | None = None

    def _compile(self, connection: Connection) -> tuple[str, dict[str, Any], frozenset[str]]:
        dialect = connection.dialect
        compiled = self._statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        constants: dict[str, Any] = {}
        required: set[str] = set()
        for bind, name in compiled.bind_names.items():
            if bind.required:
                required.add(name)
                continue
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            value = bind.effective_value
            constants[name] = process(value) if process is not None else value
        return str(compiled), constants, frozenset(required)

    def execute(self, connection: Connection, **params: Any) -> psycopg.Cursor[Any]:
        """Runs on the driver connection behind `connection`, as a server-side prepared
        statement. Raises psycopg's own errors, not SQLAlchemy's wrappers."""
        if self._compiled is None:
            self._compiled = self._compile(connection)
        sql, constants, required = self._compiled
        missing = required.difference(params)
        if missing:
            raise TypeError(f"missing parameters: {', '.join(sorted(missing))}")
        driver: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
        return driver.execute(sql, {**constants, **params}, prepare=True)
