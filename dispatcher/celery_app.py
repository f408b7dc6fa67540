"""The Celery entrypoint (`celery -A dispatcher.celery_app worker|beat|flower`): settings are
built here, once per process."""

from __future__ import annotations

from celery.signals import setup_logging, worker_process_shutdown

from dispatcher.celery_factory import create_celery
from dispatcher.worker_context import WorkerContext
from shared.logging import configure_logging
from shared.settings import Settings

settings = Settings()
app = create_celery(settings)


@setup_logging.connect
def _configure_logging(**_: object) -> None:
    # Connecting this signal stops Celery from installing its own handlers.
    configure_logging(settings)


@worker_process_shutdown.connect
def _close_worker_context(**_: object) -> None:
    WorkerContext.of(app).close()
