"""Builds the FastAPI application from settings; the only place the API wires its parts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from dispatcher.api import health, leads, metrics, telephony, templates
from dispatcher.api.body_limit import BodyLimitMiddleware
from dispatcher.api.deps import ApiDeps
from dispatcher.api.errors import install_error_handlers
from dispatcher.celery_factory import create_celery
from dispatcher.intake.announce import TaskSender
from dispatcher.intake.validate import IntakeLimits
from shared.db.session import make_engine, make_session_factory
from shared.logging import configure_logging
from shared.redis_clients import sync_redis
from shared.settings import Settings


def create_app(settings: Settings | None = None, *, tasks: TaskSender | None = None) -> FastAPI:
    """`tasks` publishes to the fleet; by default a Celery producer on the settings' broker."""
    settings = settings or Settings()
    configure_logging(settings)
    engine = make_engine(settings)
    redis_client = sync_redis(settings.redis_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()
        redis_client.close()

    app = FastAPI(
        title="callfleet",
        version="0.1.0",
        description="Merchant lead intake for AI voice calls.",
        lifespan=lifespan,
    )
    app.state.deps = ApiDeps(
        settings=settings,
        sessions=make_session_factory(engine),
        redis=redis_client,
        limits=IntakeLimits.from_settings(settings),
        tasks=tasks if tasks is not None else create_celery(settings),
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    install_error_handlers(app)
    app.include_router(leads.router)
    app.include_router(templates.router)
    app.include_router(telephony.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    return app
