"""Per-process resources for Celery tasks (DB sessions, limits), built lazily from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from celery import Celery
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.intake.validate import IntakeLimits
from shared.db.session import make_engine, make_session_factory
from shared.settings import Settings


@dataclass
class WorkerContext:
    settings: Settings
    _engine_pool_size: int = field(default=5)

    @cached_property
    def engine(self) -> Engine:
        # Built on first use, inside the worker child, never in the parent before fork.
        return make_engine(self.settings, pool_size=self._engine_pool_size)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.engine)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
            self.__dict__.pop("engine")
            self.__dict__.pop("sessions", None)

    @cached_property
    def limits(self) -> IntakeLimits:
        return IntakeLimits.from_settings(self.settings)

    @staticmethod
    def attach(celery: Celery, settings: Settings) -> None:
        celery.conf.callfleet_context = WorkerContext(settings)

    @staticmethod
    def of(celery: Celery) -> WorkerContext:
        context = celery.conf.callfleet_context
        assert isinstance(context, WorkerContext)
        return context
