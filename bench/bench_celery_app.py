"""Celery entrypoint for benchmarks (`celery -A bench.bench_celery_app worker`): the
dispatcher's app dialing through the in-process InstantProvider, plus a `bench.noop` task."""

from __future__ import annotations

from celery.signals import setup_logging, worker_process_shutdown

from dispatcher.celery_factory import create_celery
from dispatcher.providers import InstantProvider
from dispatcher.worker_context import WorkerContext
from shared.logging import configure_logging
from shared.settings import Settings

NOOP_TASK = "bench.noop"

settings = Settings()
app = create_celery(settings, provider=InstantProvider())


@app.task(name=NOOP_TASK, ignore_result=True)
def noop(counter_key: str) -> None:
    """The baseline: no work beyond counting itself, so the bench sees when a run has ended."""
    WorkerContext.of(app).redis.incr(counter_key)


@setup_logging.connect
def _configure_logging(**_: object) -> None:
    configure_logging(settings)


@worker_process_shutdown.connect
def _close_worker_context(**_: object) -> None:
    WorkerContext.of(app).close()
